"""POST /sshpyk/hosts/{alias}/environments: the Python environments of a host (conda, venvs,
modules, the system's), for the Lab form's picker; ``sshpyk.discovery`` does the work.

A POST, like ``POST /sshpyk/hosts/{alias}/kernelspecs``: it writes nothing, but it connects
to a host and runs programs there, with a config the body names (a config is a program in
disguise: ``ProxyCommand``), so it is XSRF-checked as no GET is.  The config must pass the
model's check (a regular file of the user's or root's, not writable by others), and the ssh
client is the server's, never the request's.  A host that wants a login answers as the
other host routes do: the master's failure (502, its message naming ``sshpyk login``).
"""

from __future__ import annotations

import tornado
from jupyter_server.auth.decorator import authorized

from ..discovery import FIELDS, KINDS, TIMEOUT, discover
from ..model import validate
from ..transport import Master, Target
from .base import SSHPykHandler
from .hosts import body_fields

# ---- its part of the OpenAPI document (openapi.py merges the path) ---------------------------
_STR, _OPT_STR, _BOOL = {"type": "string"}, {"type": ["string", "null"]}, {"type": "boolean"}
# inline, not components: openapi.py merges this path alone (its 500 lines)
ENVIRONMENT = {
    "type": "object",
    "required": list(FIELDS),
    "properties": {
        "prefix": {**_STR, "description": "the remote_python_prefix of a kernel in it"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "name": _STR,
        "python": {**_OPT_STR, "description": "its python's version; null: no answer"},
        "ipykernel": _BOOL,
        "jupyter_client": _BOOL,
        "module": {**_OPT_STR, "description": "the module that provides it (kind module)"},
        "error": {**_OPT_STR, "description": "why it is not usable, or not fully known"},
    },
}
ENVIRONMENTS = {
    "type": "object",
    "required": ["environments", "errors"],
    "properties": {
        "environments": {"type": "array", "items": ENVIRONMENT},
        "errors": {
            "type": "array",
            "items": _STR,
            "description": "what discovery could not read or run",
        },
    },
}


def _answer(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = {"$ref": "#/components/schemas/Error"}


ENVIRONMENTS_PATH = {
    "/sshpyk/hosts/{alias}/environments": {
        "parameters": [{"name": "alias", "in": "path", "required": True, "schema": _STR}],
        "post": {
            "operationId": "discoverEnvironments",
            "summary": "the Python environments of a host (conda, venvs, modules, the "
            "system's), each with whether ipykernel and jupyter_client are installed; writes "
            "nothing",
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "ssh_config": {
                                    **_OPT_STR,
                                    "description": "the ssh config file (default: ssh's own)",
                                }
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _answer("the host's Python environments", ENVIRONMENTS),
                "400": _answer("invalid alias or ssh config, or a body naming ssh", ERROR),
                "502": _answer(
                    "the host could not be reached, wants a login, or has no python", ERROR
                ),
            },
        },
    }
}

CONNECT_TIMEOUT = 20.0  # seconds for the master (a login-wanting host fails at once)


class EnvironmentsHandler(SSHPykHandler):
    auth_resource = "kernelspecs"

    @tornado.web.authenticated
    @authorized
    async def post(self, alias: str):
        """``{"environments": [Environment...], "errors": [str...]}`` of ``alias``."""
        # InvalidField (400) before any ssh: the alias and the config file
        fields = {"ssh_host_alias": alias, **body_fields(self.json_body(), ("ssh_config",))}
        validate(fields, only=("ssh_host_alias", "ssh_config"))
        target = Target.from_config({**fields, "ssh": self.sshpyk_settings.ssh})
        master = Master.for_target(target, pool=self.runtime.masters)
        await master.ensure(CONNECT_TIMEOUT)  # SSHPykError (502): unreachable, or wants a login
        # every ssh call is an asyncio subprocess: the server's loop never waits on the host
        found = await discover(master, TIMEOUT)
        self.finish({"environments": found["environments"], "errors": found["errors"]})
