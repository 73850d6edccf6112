"""The OpenAPI 3 document of the REST API, built from the same kernel schema the API
validates with, so the two can never disagree.  Served at ``/sshpyk/openapi.json``."""

from __future__ import annotations

import copy
from typing import Any

import tornado
from jupyter_server.auth.decorator import authorized

from .. import __version__
from ..model import schema
from .base import SSHPykHandler

CHECK_STATUS = ["ok", "warn", "fail", "skipped"]
TUNNEL_STATES = ["launching", "connected", "reconnecting", "lost", "dead"]
KERNEL_ID = {
    "name": "kernel_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f-]{1,64}$"},
}
ORPHAN = {
    "type": "object",
    "properties": {
        "kernel_id": {"type": "string"},
        "kernelspec": {"type": "string"},
        "display_name": {"type": "string"},
        "host_alias": {"type": "string"},
        "started_at": {"type": "number"},
        "server_pid": {"type": "integer"},
        "alive": {"type": "boolean"},
        "attached": {"type": "boolean"},
        "reachable": {"type": "boolean"},
        "lease_age": {"type": ["number", "null"]},
        "error": {"type": ["string", "null"]},
        "on_host": {"type": ["string", "null"], "description": "the hostname its run dir names"},
        "elsewhere": {
            "type": "boolean",
            "description": "it runs on another host that shares the home directory: never "
            "signalled or removed from here",
        },
    },
}
MOUNT_STATUS = {
    "type": "object",
    "properties": {
        "local_path": {"type": "string"},
        "remote_path": {"type": "string"},
        "state": {
            "type": "string",
            "enum": ["unmounted", "mounting", "mounted", "remounting", "failed"],
        },
        "since": {"type": "number"},
        "error": {"type": ["string", "null"]},
        "mounts": {"type": "integer"},
    },
}


def _kernel_schema(partial: bool = False) -> dict[str, Any]:
    s = copy.deepcopy(schema())
    for key in ("$schema", "$id"):
        s.pop(key, None)

    def strip(node: Any) -> None:  # drop our private keywords from the public document
        if isinstance(node, dict):
            for k in [k for k in node if k.startswith("x-sshpyk")]:
                del node[k]
            for v in node.values():
                strip(v)

    strip(s)
    if partial:
        s.pop("required")
        for name, prop in s["properties"].items():
            if name not in schema()["required"]:
                prop["type"] = sorted(
                    {*([prop["type"]] if isinstance(prop["type"], str) else prop["type"]), "null"}
                )
    return s


def _json(ref: str) -> dict:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _err(desc: str) -> dict:
    return {"description": desc, **_json("Error")}


def _field(name: str) -> dict:
    """One field of the kernel schema, as the public document shows it."""
    return _kernel_schema()["properties"][name]


NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}


def document() -> dict[str, Any]:
    doc = _paths()
    # every route demands a user with the right permission (and, on mutating verbs with a
    # cookie, the XSRF token): jupyter_server answers 403 otherwise
    for item in doc["paths"].values():
        for verb, op in item.items():
            if verb != "parameters":
                op["responses"].setdefault(
                    "403", _err("not authenticated, not authorized, or no XSRF token")
                )
    return doc


def _paths() -> dict[str, Any]:
    kernel_out = {
        "type": "object",
        "required": ["name", "ssh"],
        "properties": {
            "name": {"type": "string"},
            "ssh": {"type": "boolean"},
            "resource_dir": {"type": "string"},
            "config": {"$ref": "#/components/schemas/SSHKernel"},
            "display_name": {"type": ["string", "null"]},
            "language": {"type": ["string", "null"]},
            "error": {"type": "object"},
        },
    }
    check = {
        "type": "object",
        "required": ["id", "title", "status"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "string", "enum": CHECK_STATUS},
            "value": {"type": "string"},
            "hint": {"type": "string"},
            "data": {"type": "object"},
        },
    }
    return {
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
            "schemas": {
                "SSHKernel": _kernel_schema(),
                "SSHKernelPatch": _kernel_schema(partial=True),
                "Kernel": kernel_out,
                "Check": check,
                "Error": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"type": "string"}, "field": {"type": "string"}},
                },
            },
        },
        "security": [{"token": []}],
        "paths": {
            "/sshpyk/kernels": {
                "get": {
                    "operationId": "listKernels",
                    "summary": "every kernelspec",
                    "responses": {
                        "200": {
                            "description": "kernels",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "kernels": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Kernel"},
                                            }
                                        },
                                    }
                                }
                            },
                        }
                    },
                },
                "post": {
                    "operationId": "addKernel",
                    "summary": "add an SSH kernel",
                    "requestBody": {"required": True, **_json("SSHKernel")},
                    "responses": {
                        "201": {"description": "added", **_json("Kernel")},
                        "400": _err("invalid input"),
                        "409": _err("the name exists"),
                    },
                },
            },
            "/sshpyk/kernels/{name}": {
                "parameters": [NAME],
                "get": {
                    "operationId": "getKernel",
                    "responses": {
                        "200": {"description": "the kernel", **_json("Kernel")},
                        "404": _err("unknown kernel"),
                    },
                },
                "patch": {
                    "operationId": "editKernel",
                    "summary": "partial edit; null puts an optional field to its default",
                    "requestBody": {"required": True, **_json("SSHKernelPatch")},
                    "responses": {
                        "200": {"description": "edited", **_json("Kernel")},
                        "400": _err("invalid input"),
                        "404": _err("unknown kernel"),
                        "422": _err("not an SSH kernel"),
                    },
                },
                "delete": {
                    "operationId": "deleteKernel",
                    "responses": {
                        "204": {"description": "deleted"},
                        "404": _err("unknown kernel"),
                        "409": _err("outside the user's data dir"),
                        "422": _err("not an SSH kernel"),
                    },
                },
            },
            "/sshpyk/kernels/{name}/check": {
                "parameters": [
                    NAME,
                    {
                        "name": "stream",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["0", "1"]},
                        "description": "1: NDJSON, a line per check as it "
                        "finishes, then {done, ok}",
                    },
                ],
                "post": {
                    "operationId": "checkKernel",
                    "responses": {
                        "200": {
                            "description": "every check",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "name": {"type": "string"},
                                            "ok": {"type": "boolean"},
                                            "checks": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Check"},
                                            },
                                        },
                                    }
                                },
                                "application/x-ndjson": {"schema": {"type": "string"}},
                            },
                        },
                        "404": _err("unknown kernel"),
                        "422": _err("not an SSH kernel"),
                    },
                },
            },
            "/sshpyk/orphans": {
                "get": {
                    "operationId": "orphans",
                    "summary": "SSH kernels still running whose Jupyter server is gone",
                    "responses": {
                        "200": {
                            "description": "each with what its host says now",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "kernels": {"type": "array", "items": ORPHAN}
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/sshpyk/orphans/{kernel_id}": {
                "parameters": [KERNEL_ID],
                "delete": {
                    "operationId": "shutDownOrphan",
                    "responses": {
                        "204": {"description": "ended on its host and forgotten"},
                        "404": _err("no such orphaned kernel"),
                        "409": _err(
                            "another request is re-attaching or shutting it down, or it runs "
                            "on another host that shares the home directory"
                        ),
                        "502": _err("the host could not be reached"),
                    },
                },
            },
            "/sshpyk/orphans/{kernel_id}/attach": {
                "parameters": [KERNEL_ID],
                "post": {
                    "operationId": "attachOrphan",
                    "summary": "make it one of this server's kernels, state intact",
                    "responses": {
                        "201": {
                            "description": "the kernel, as /api/kernels lists it",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "404": _err("no such orphaned kernel"),
                        "409": _err(
                            "its kernelspec no longer exists, another request holds the "
                            "kernel, or it runs on another host that shares the home directory"
                        ),
                        "502": _err("the host could not be reached, or the kernel ended"),
                    },
                },
            },
            "/sshpyk/hosts": {
                "get": {
                    "operationId": "listHosts",
                    "summary": "Host aliases of the server user's default ssh config (and its "
                    "Includes), resolved with ssh -G; wildcard patterns left out. Takes no "
                    "ssh_config and no ssh: a config is a program in disguise, so naming one "
                    "is a POST",
                    "responses": {
                        "200": {
                            "description": "hosts",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "400": _err("a query named ssh_config or ssh"),
                    },
                },
                "post": {
                    "operationId": "listHostsOfConfig",
                    "summary": "Host aliases of the given ssh config (a regular file of yours "
                    "or root's, not writable by others, at most 1 MiB)",
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"ssh_config": _field("ssh_config")},
                                    "additionalProperties": False,
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "hosts",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "400": _err("invalid input, or an unsafe ssh config file"),
                    },
                },
            },
            "/sshpyk/hosts/{alias}/kernelspecs": {
                "parameters": [
                    {"name": "alias", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "post": {
                    "operationId": "discoverKernelspecs",
                    "summary": "the kernelspecs of a remote environment (connects to the host "
                    "and runs the prefix's python there)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "remote_python_prefix": _field("remote_python_prefix"),
                                        "ssh_config": _field("ssh_config"),
                                    },
                                    "required": ["remote_python_prefix"],
                                    "additionalProperties": False,
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "kernelspecs",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "400": _err("invalid input or unusable environment"),
                        "502": _err("the host could not be reached"),
                    },
                },
            },
            "/sshpyk/status": {
                "get": {
                    "operationId": "status",
                    "summary": "running SSH kernels and their tunnels",
                    "responses": {
                        "200": {
                            "description": "status",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "kernels": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "properties": {
                                                        "kernel_id": {"type": "string"},
                                                        "kernelspec": {"type": "string"},
                                                        "host_alias": {"type": "string"},
                                                        "state": {
                                                            "type": "string",
                                                            "enum": TUNNEL_STATES,
                                                        },
                                                        "step": {"type": ["string", "null"]},
                                                        "since": {"type": "number"},
                                                        "rtt_ms": {"type": ["number", "null"]},
                                                        "mounts": {
                                                            "type": "array",
                                                            "items": MOUNT_STATUS,
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    }
                                }
                            },
                        }
                    },
                },
            },
            "/sshpyk/version": {
                "get": {
                    "operationId": "version",
                    "responses": {
                        "200": {
                            "description": "the server extension's version",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"version": {"type": "string"}},
                                    }
                                }
                            },
                        }
                    },
                },
            },
            "/sshpyk/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "responses": {"200": {"description": "this document"}},
                },
            },
        },
    }


class OpenAPIHandler(SSHPykHandler):
    auth_resource = "kernelspecs"

    @tornado.web.authenticated
    @authorized
    def get(self):
        self.finish(document())
