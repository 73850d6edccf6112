"""The pieces of the OpenAPI document (``openapi.py``): small builders for the shapes it
repeats, and its component schemas, built from the kernel schema the API validates with and
from the state enums of ``sshpyk.states``."""

from __future__ import annotations

import copy
from typing import Any

from ..model import schema
from ..states import CheckStatus, LoginState, MountState, SlurmJobState, TunnelState, values

# ---- small builders for the shapes the document repeats ---------------------------------

STR, NUM, INT, BOOL = ({"type": t} for t in ("string", "number", "integer", "boolean"))
OPT_STR, OPT_NUM = {"type": ["string", "null"]}, {"type": ["number", "null"]}
ANY_OBJECT = {"type": "object"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str] | None = None, **props: Any) -> dict[str, Any]:
    return {"type": "object", **({"required": required} if required else {}), "properties": props}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _json(body: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": body}}}


def _ok(description: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, **(_json(body) if body is not None else {})}


def _err(desc: str) -> dict:
    return _ok(desc, _ref("Error"))


def _op(op_id: str, responses: dict[str, Any], summary: str = "", **more: Any) -> dict:
    head = {"operationId": op_id, **({"summary": summary} if summary else {})}
    return {**head, **more, "responses": responses}


def _request(body: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"requestBody": {"required": required, **_json(body)}}


def _in_path(name: str, **schema_: Any) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", **schema_}}


def _enum(enum) -> dict[str, Any]:
    return {"type": "string", "enum": values(enum)}


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


def _field(name: str) -> dict:
    """One field of the kernel schema, as the public document shows it."""
    return _kernel_schema()["properties"][name]


# ---- the shapes ----------------------------------------------------------------------------


def _schemas() -> dict[str, Any]:
    return {
        "SSHKernel": _kernel_schema(),
        "SSHKernelPatch": _kernel_schema(partial=True),
        # a kernelspec as the store lists it (local ones included)
        "Kernel": _obj(
            ["name", "ssh"],
            name=STR,
            ssh=BOOL,
            resource_dir=STR,
            config=_ref("SSHKernel"),
            display_name=OPT_STR,
            language=OPT_STR,
            error=ANY_OBJECT,
        ),
        "CheckStatus": _enum(CheckStatus),
        "TunnelState": _enum(TunnelState),
        "MountState": _enum(MountState),
        "LoginState": _enum(LoginState),
        "SlurmJobState": _enum(SlurmJobState),
        "SlurmStatus": _obj(
            job_id=OPT_STR,
            state={"anyOf": [_ref("SlurmJobState"), {"type": "null"}]},
            reason={**OPT_STR, "description": "squeue's reason while the job is pending"},
            node={**OPT_STR, "description": "the node the kernel runs on (the batch host)"},
            est_start={**OPT_NUM, "description": "Slurm's estimated start (epoch seconds)"},
            ends_at={**OPT_NUM, "description": "when the time limit ends the job (epoch s)"},
            warn_at={**OPT_NUM, "description": "when Lab warns of that end (epoch seconds)"},
            time_limit=OPT_STR,
            ended={**OPT_STR, "description": "why the job ended (said instead of 'dead')"},
        ),
        "Prompt": _obj(
            ["id", "text", "echo"],
            id=STR,
            text={**STR, "description": "ssh's question, verbatim"},
            echo={**BOOL, "description": "the answer may show as typed (false: mask it)"},
        ),
        "Login": _obj(
            ["id", "alias", "state"],
            id=STR,
            alias=STR,
            ssh_config=OPT_STR,
            state=_ref("LoginState"),
            prompt={"anyOf": [_ref("Prompt"), {"type": "null"}]},
            error=OPT_STR,
        ),
        "Check": _obj(
            ["id", "title", "status"],
            id=STR,
            title=STR,
            status=_ref("CheckStatus"),
            value=STR,
            hint=STR,
            data=ANY_OBJECT,
        ),
        "MountStatus": _obj(
            local_path=STR,
            remote_path=STR,
            state=_ref("MountState"),
            since=NUM,
            error=OPT_STR,
            mounts=INT,
        ),
        "KernelStatus": _obj(
            kernel_id=STR,
            kernelspec=STR,
            host_alias=STR,
            state=_ref("TunnelState"),
            step=OPT_STR,
            since=NUM,
            rtt_ms=OPT_NUM,
            mounts=_array(_ref("MountStatus")),
            slurm={**_ref("SlurmStatus"), "description": "a Slurm kernel's job"},
        ),
        "Orphan": _obj(
            kernel_id=STR,
            kernelspec=STR,
            display_name=STR,
            host_alias=STR,
            started_at=NUM,
            server_pid=INT,
            alive=BOOL,
            attached=BOOL,
            reachable=BOOL,
            lease_age=OPT_NUM,
            error=OPT_STR,
            on_host={**OPT_STR, "description": "the hostname its run dir names"},
            elsewhere={
                **BOOL,
                "description": "it runs on another host that shares the home directory: never "
                "signalled or removed from here",
            },
        ),
        "Error": _obj(
            ["message"],
            message=STR,
            field=STR,
            errors={
                **_array(_obj(["field", "message"], field=STR, message=STR)),
                "description": "a refused input's invalid fields, each with its message",
            },
        ),
    }
