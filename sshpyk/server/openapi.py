"""The OpenAPI 3 document of the REST API, built from the same kernel schema the API
validates with and from the state enums of ``sshpyk.states``, so neither can disagree with
it.  Served at ``/sshpyk/openapi.json``; ``python -m sshpyk.server.openapi`` prints it, and
its copy in ``sshpyk/resources/openapi.json`` (a unit test keeps the two equal) is what the
frontend's TypeScript types are checked against."""

from __future__ import annotations

import copy
import json
from typing import Any

import tornado
from jupyter_server.auth.decorator import authorized

from .. import __version__
from .base import SSHPykHandler
from .discover import ENVIRONMENTS_PATH
from .openapi_schemas import (
    ANY_OBJECT,
    BOOL,
    STR,
    _array,
    _err,
    _field,
    _in_path,
    _json,
    _obj,
    _ok,
    _op,
    _ref,
    _request,
    _schemas,
)

# ---- the paths -----------------------------------------------------------------------------

NAME = _in_path("name")
KERNEL_ID = _in_path("kernel_id", pattern="^[0-9a-f-]{1,64}$")
LOGIN_ID = _in_path("login_id", pattern="^[0-9a-f]{16}$")
STREAM = {
    "name": "stream",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["0", "1"]},
    "description": "1: NDJSON, a line per check as it finishes, then {done, ok}",
}
HOSTS = _ok("hosts", ANY_OBJECT)
UNKNOWN, NOT_SSH = _err("unknown kernel"), _err("not an SSH kernel")
NO_ORPHAN = _err("no such orphaned kernel")


def _kernelspec_paths() -> dict[str, Any]:
    return {
        "": {
            "get": _op(
                "listKernels",
                {"200": _ok("kernels", _obj(kernels=_array(_ref("Kernel"))))},
                "every kernelspec",
            ),
            "post": _op(
                "addKernel",
                {
                    "201": _ok("added", _ref("Kernel")),
                    "400": _err("invalid input"),
                    "409": _err("the name exists"),
                },
                "add an SSH kernel",
                **_request(_ref("SSHKernel")),
            ),
        },
        "/{name}": {
            "parameters": [NAME],
            "get": _op("getKernel", {"200": _ok("the kernel", _ref("Kernel")), "404": UNKNOWN}),
            "patch": _op(
                "editKernel",
                {
                    "200": _ok("edited", _ref("Kernel")),
                    "400": _err("invalid input"),
                    "404": UNKNOWN,
                    "422": NOT_SSH,
                },
                "partial edit; null puts an optional field to its default",
                **_request(_ref("SSHKernelPatch")),
            ),
            "delete": _op(
                "deleteKernel",
                {
                    "204": _ok("deleted"),
                    "404": UNKNOWN,
                    "409": _err("outside the user's data dir"),
                    "422": NOT_SSH,
                },
            ),
        },
        "/{name}/check": {
            "parameters": [NAME, STREAM],
            "post": _op(
                "checkKernel",
                {
                    "200": {
                        "description": "every check",
                        "content": {
                            **_json(_obj(name=STR, ok=BOOL, checks=_array(_ref("Check"))))[
                                "content"
                            ],
                            "application/x-ndjson": {"schema": STR},
                        },
                    },
                    "404": UNKNOWN,
                    "422": NOT_SSH,
                },
            ),
        },
    }


def _paths() -> dict[str, Any]:
    specs = _kernelspec_paths()
    paths = {f"/sshpyk/kernelspecs{tail}": item for tail, item in specs.items()}
    # the old names of the same routes, answered for one release
    for tail, item in copy.deepcopy(specs).items():
        for verb, op in item.items():
            if verb != "parameters":
                op.update(operationId=op["operationId"] + "Deprecated", deprecated=True)
                op["summary"] = f"deprecated alias of {verb.upper()} /sshpyk/kernelspecs{tail}"
        paths[f"/sshpyk/kernels{tail}"] = item
    return {
        **paths,
        "/sshpyk/orphans": {
            "get": _op(
                "orphans",
                {
                    "200": _ok(
                        "each with what its host says now", _obj(kernels=_array(_ref("Orphan")))
                    )
                },
                "SSH kernels still running whose Jupyter server is gone",
            )
        },
        "/sshpyk/orphans/{kernel_id}": {
            "parameters": [KERNEL_ID],
            "delete": _op(
                "shutDownOrphan",
                {
                    "204": _ok("ended on its host and forgotten"),
                    "404": NO_ORPHAN,
                    "409": _err(
                        "another request is re-attaching or shutting it down, or it runs "
                        "on another host that shares the home directory"
                    ),
                    "502": _err("the host could not be reached"),
                },
            ),
        },
        "/sshpyk/orphans/{kernel_id}/attach": {
            "parameters": [KERNEL_ID],
            "post": _op(
                "attachOrphan",
                {
                    "201": _ok("the kernel, as /api/kernels lists it", ANY_OBJECT),
                    "404": NO_ORPHAN,
                    "409": _err(
                        "its kernelspec no longer exists, another request holds the "
                        "kernel, or it runs on another host that shares the home directory"
                    ),
                    "502": _err("the host could not be reached, or the kernel ended"),
                },
                "make it one of this server's kernels, state intact",
            ),
        },
        "/sshpyk/hosts": {
            "get": _op(
                "listHosts",
                {"200": HOSTS, "400": _err("a query named ssh_config or ssh")},
                "Host aliases of the server user's default ssh config (and its Includes), "
                "resolved with ssh -G; wildcard patterns left out. Takes no ssh_config and no "
                "ssh: a config is a program in disguise, so naming one is a POST",
            ),
            "post": _op(
                "listHostsOfConfig",
                {"200": HOSTS, "400": _err("invalid input, or an unsafe ssh config file")},
                "Host aliases of the given ssh config (a regular file of yours or root's, not "
                "writable by others, at most 1 MiB)",
                **_request(
                    {**_obj(ssh_config=_field("ssh_config")), "additionalProperties": False},
                    required=False,
                ),
            ),
        },
        "/sshpyk/hosts/{alias}/kernelspecs": {
            "parameters": [_in_path("alias")],
            "post": _op(
                "discoverKernelspecs",
                {
                    "200": _ok("kernelspecs", ANY_OBJECT),
                    "400": _err("invalid input or unusable environment"),
                    "502": _err("the host could not be reached"),
                },
                "the kernelspecs of a remote environment (connects to the host and runs the "
                "prefix's python there)",
                **_request(
                    {
                        **_obj(
                            ["remote_python_prefix"],
                            remote_python_prefix=_field("remote_python_prefix"),
                            ssh_config=_field("ssh_config"),
                        ),
                        "additionalProperties": False,
                    }
                ),
            ),
        },
        **ENVIRONMENTS_PATH,  # GET /sshpyk/hosts/{alias}/environments (discover.py)
        "/sshpyk/status": {
            "get": _op(
                "status",
                {"200": _ok("status", _obj(kernels=_array(_ref("KernelStatus"))))},
                "running SSH kernels and their tunnels",
            ),
        },
        "/sshpyk/kernels/{kernel_id}/cancel": {
            "parameters": [KERNEL_ID],
            "post": _op(
                "cancelLaunch",
                {"204": _ok("the launch stopped"), "404": _err("no launch in progress")},
                "stop a launch in progress; a Slurm job it submitted is cancelled",
            ),
        },
        "/sshpyk/logins": {
            "get": _op(
                "logins",
                {"200": _ok("current and recent logins", _obj(logins=_array(_ref("Login"))))},
                "interactive logins to hosts (password, one-time code, host key)",
            ),
            "post": _op(
                "startLogin",
                {
                    "202": _ok(
                        "the login (the one in progress for that host, if any)", _ref("Login")
                    ),
                    "400": _err("a field is invalid"),
                },
                "log in to a host: its questions then appear in the login's prompt",
                **_request(
                    {
                        **_obj(
                            ["alias"],
                            alias=_field("ssh_host_alias"),
                            ssh_config=_field("ssh_config"),
                        ),
                        "additionalProperties": False,
                    }
                ),
            ),
        },
        "/sshpyk/logins/{login_id}/answer": {
            "parameters": [LOGIN_ID],
            "post": _op(
                "answerLogin",
                {
                    "204": _ok("passed to ssh"),
                    "404": _err("no such login or question"),
                    "400": _err("a field is invalid"),
                },
                "answer the question a login waits on",
                **_request(
                    {
                        **_obj(["prompt_id", "answer"], prompt_id=STR, answer=STR),
                        "additionalProperties": False,
                    }
                ),
            ),
        },
        "/sshpyk/logins/{login_id}/cancel": {
            "parameters": [LOGIN_ID],
            "post": _op(
                "cancelLogin",
                {"204": _ok("given up"), "404": _err("no such login")},
                "give a login up (its question is refused and ssh ended)",
            ),
        },
        "/sshpyk/version": {
            "get": _op(
                "version", {"200": _ok("the server extension's version", _obj(version=STR))}
            ),
        },
        "/sshpyk/openapi.json": {
            "get": _op("openapi", {"200": _ok("this document")}),
        },
    }


def document() -> dict[str, Any]:
    doc = {
        "openapi": "3.0.3",
        "info": {
            "title": "sshpyk",
            "version": __version__,
            "description": "SSH kernels of a Jupyter server. Every route needs an "
            "authenticated user (token or login cookie + XSRF).",
        },
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization"}
            },
            "schemas": _schemas(),
        },
        "security": [{"token": []}],
        "paths": _paths(),
    }
    # every route demands a user with the right permission (and, on mutating verbs with a
    # cookie, the XSRF token): jupyter_server answers 403 otherwise
    for item in doc["paths"].values():
        for verb, op in item.items():
            if verb != "parameters":
                op["responses"].setdefault(
                    "403", _err("not authenticated, not authorized, or no XSRF token")
                )
    return doc


def dumps(doc: dict[str, Any]) -> str:
    """The document as ``sshpyk/resources/openapi.json`` holds it."""
    return json.dumps(doc, indent=2) + "\n"


class OpenAPIHandler(SSHPykHandler):
    auth_resource = "kernelspecs"

    @tornado.web.authenticated
    @authorized
    def get(self):
        self.finish(document())


if __name__ == "__main__":  # python -m sshpyk.server.openapi > sshpyk/resources/openapi.json
    print(dumps(document()), end="")
