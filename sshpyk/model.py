"""The SSH kernel model: one schema, one validator, used by the provisioner, CLI, REST and UI.

``resources/ssh-kernel.schema.json`` is the single source of truth (the Lab form renders
it); this module applies it — types, enums, patterns, ranges, required fields — plus the
checks a JSON schema cannot express (``x-sshpyk-check``): what makes a value safe to give
to ssh or a remote shell.  Every error names the field; nothing runs or is written with a
value that failed here.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field, fields
from functools import cache
from importlib.resources import files
from typing import Any

from .errors import InvalidField, InvalidFields
from .localfiles import check_ssh_config
from .slurm_options import CHECKS as SLURM_CHECKS

PROVISIONER_NAME = "sshpyk-provisioner"
# kernel.json's own fields (``env``: Jupyter's, which sshpyk sets for the remote kernel)
SPEC_FIELDS = ("kernel_name", "display_name", "language", "interrupt_mode", "env")

# A plain ssh Host token: never an option (no leading "-"), no whitespace, quotes, control
# characters or shell metacharacters.
_ALIAS = re.compile(r"^[A-Za-z0-9_.@%+:\[\]][A-Za-z0-9_.@%+:\[\]-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Paths are always quoted, but a path that needs these is far more likely an injection
# attempt than a real directory: refuse them outright.
_SHELL_META = re.compile(r"[$`;|&<>\\\"'*?!{}]")
_SSHFS_OPTION = re.compile(r"^[A-Za-z0-9_]+(=[A-Za-z0-9_.,:/+@%-]*)?$")
# sshfs options that would run a program or replace the transport sshpyk controls
_SSHFS_FORBIDDEN = {"ssh_command", "sftp_server", "directport", "passive", "slave", "ssh_protocol"}
_JSON_TYPES = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


@cache
def schema() -> dict:
    return json.loads(files("sshpyk.resources").joinpath("ssh-kernel.schema.json").read_text())


CONFIG_FIELDS = tuple(k for k in schema()["properties"] if k not in SPEC_FIELDS)


# ---- checks a JSON schema cannot express ----------------------------------------------------


def _no_control(name: str, value: str) -> None:
    if _CONTROL.search(value):
        raise InvalidField(name, "must not contain newlines, NULs or control characters")


def _safe_path(name: str, value: str) -> None:
    _no_control(name, value)
    bad = _SHELL_META.search(value)
    if bad:
        raise InvalidField(
            name, f"{value!r} contains {bad.group()!r}; paths may not contain shell metacharacters"
        )


def check_alias(name: str, value: str) -> None:
    _no_control(name, value)
    if value.startswith("-"):
        raise InvalidField(name, f"{value!r} starts with '-' (ssh would read it as an option)")
    if not _ALIAS.fullmatch(value):
        raise InvalidField(
            name,
            f"{value!r} is not a plain ssh Host alias (no spaces, quotes, "
            "control characters or shell metacharacters)",
        )


def check_remote_path(name: str, value: str) -> None:
    _safe_path(name, value)
    if not value:
        raise InvalidField(name, "must not be empty")
    if not (value.startswith("/") or value == "~" or value.startswith("~/")):
        raise InvalidField(name, f"{value!r} must be absolute or start with '~/'")


def check_local_path(name: str, value: str) -> None:
    _safe_path(name, value)
    if not value:
        raise InvalidField(name, "must not be empty")
    if value.startswith("-"):
        raise InvalidField(name, f"{value!r} starts with '-'")


def check_text(name: str, value: str) -> None:
    _no_control(name, value)
    if not value.strip():
        raise InvalidField(name, "must not be blank")


def check_kernel_name(name: str, value: str) -> None:
    """A directory name under ``kernels/``: never one that means this or the parent dir."""
    _no_control(name, value)
    if value in (".", ".."):
        raise InvalidField(name, f"{value!r} is not a kernel name (it names a directory)")


def check_sshfs_options(name: str, value: str) -> None:
    _no_control(name, value)
    for opt in value.split(","):
        if not _SSHFS_OPTION.fullmatch(opt):
            raise InvalidField(name, f"{opt!r} is not an sshfs option of the form name[=value]")
        if opt.split("=", 1)[0] in _SSHFS_FORBIDDEN:
            raise InvalidField(
                name, f"{opt.split('=', 1)[0]!r} is not allowed: sshpyk runs the transport itself"
            )


def check_env_value(name: str, value: str) -> None:
    _no_control(name, value)


def check_shell_line(name: str, value: str) -> None:
    """One line of the user's own shell, run on their host at launch (never here)."""
    _no_control(name, value)
    if not value.strip():
        raise InvalidField(name, "must not be blank")


# Runtime options sshpyk sets itself, which the kernel's channels and its stop depend on
_CONTAINER_OWN = {
    "--name": "sshpyk names the container, to stop it with the kernel",
    "-d": "the kernel's container must stay attached to sshpyk's launcher",
    "--detach": "the kernel's container must stay attached to sshpyk's launcher",
    "--network": "the kernel shares the host's network (its channels listen there)",
    "--net": "the kernel shares the host's network (its channels listen there)",
}


def check_container_image(name: str, value: str) -> None:
    _no_control(name, value)
    if value.startswith("-"):
        raise InvalidField(name, f"{value!r} starts with '-' (the runtime would read an option)")
    if not re.fullmatch(r"[A-Za-z0-9_.~/][A-Za-z0-9_.~/:@+=-]*", value):
        raise InvalidField(
            name,
            f"{value!r} is not an image reference or file: letters, digits and . _ ~ / : @ + = -"
            " only, no spaces",
        )


def check_container_python(name: str, value: str) -> None:
    _no_control(name, value)
    if not re.fullmatch(r"[A-Za-z0-9_./+][A-Za-z0-9_./+-]*", value):
        raise InvalidField(
            name, f"{value!r} is not a command or a path (letters, digits and . _ / + -)"
        )


def check_container_option(name: str, value: str) -> None:
    _no_control(name, value)
    if not value.startswith("-") or value.strip("-") == "":
        raise InvalidField(name, f"{value!r} is not an option (e.g. --nv or --gpus=all)")
    flag = value.split("=", 1)[0]
    if _CONTAINER_OWN.get(flag):
        raise InvalidField(name, f"{flag} is not allowed: {_CONTAINER_OWN[flag]}")


def check_ssh_config_path(name: str, value: str) -> None:
    """A path, then the file itself: ssh runs what a config says (see ``localfiles``)."""
    check_local_path(name, value)
    check_ssh_config(name, value)


_CHECKS = {
    "alias": check_alias,
    "remote_path": check_remote_path,
    "local_path": check_local_path,
    "ssh_config": check_ssh_config_path,
    "text": check_text,
    "kernel_name": check_kernel_name,
    "sshfs_options": check_sshfs_options,
    "env_value": check_env_value,
    "shell_line": check_shell_line,
    "container_image": check_container_image,
    "container_python": check_container_python,
    "container_option": check_container_option,
    **SLURM_CHECKS,
}


# ---- the schema subset we use ------------------------------------------------------------------


def _check(name: str, value: Any, rule: dict) -> None:
    types = rule.get("type", [])
    types = [types] if isinstance(types, str) else types
    if types and not any(
        isinstance(value, _JSON_TYPES[t]) and not (t == "integer" and isinstance(value, bool))
        for t in types
    ):
        raise InvalidField(name, f"{value!r} must be of type {' or '.join(types)}")
    if value is None:
        return
    if "x-sshpyk-check" in rule and isinstance(value, str):
        # first: it says what is wrong in words; the schema's pattern (for the Lab form's own
        # validation) then only repeats it
        _CHECKS[rule["x-sshpyk-check"]](name, value)
    if "enum" in rule and value not in rule["enum"]:
        raise InvalidField(name, f"{value!r} must be one of {', '.join(rule['enum'])}")
    if isinstance(value, str):
        if len(value) < rule.get("minLength", 0):
            raise InvalidField(name, "must not be empty")
        if len(value) > rule.get("maxLength", 4096):
            raise InvalidField(name, f"is longer than {rule.get('maxLength', 4096)} characters")
        # fullmatch: re.match's "$" also matches before a final newline
        if "pattern" in rule and not re.fullmatch(rule["pattern"], value):
            raise InvalidField(name, f"{value!r} must match {rule['pattern']}")
    if isinstance(value, int) and not (
        rule.get("minimum", value) <= value <= rule.get("maximum", value)
    ):
        raise InvalidField(name, f"{value!r} must be from {rule['minimum']} to {rule['maximum']}")
    if isinstance(value, list):
        if len(value) > rule.get("maxItems", 1000):
            raise InvalidField(name, f"has more than {rule['maxItems']} entries")
        items = rule["items"]
        for i, item in enumerate(value):
            if "properties" in items:
                _check_object(f"{name}[{i}]", item, items)
            else:
                _check(f"{name}[{i}]", item, items)
    if isinstance(value, dict) and "properties" in rule:
        _check_object(name, value, rule)
    elif isinstance(value, dict) and "additionalProperties" in rule:  # a map: env
        if len(value) > rule.get("maxProperties", 1000):
            raise InvalidField(name, f"has more than {rule['maxProperties']} entries")
        names = rule.get("propertyNames", {}).get("pattern")
        for key, v in value.items():
            if names and not re.fullmatch(names, key):
                raise InvalidField(
                    f"{name}.{key}", "is not a variable name (letters, digits and _)"
                )
            _check(f"{name}.{key}", v, rule["additionalProperties"])


def _check_object(name: str, value: Any, rule: dict) -> None:
    if not isinstance(value, dict):
        raise InvalidField(name, "must be an object")
    props = rule["properties"]
    for key in value:
        if key not in props:
            raise InvalidField(f"{name}.{key}", "unknown field")
    for key in rule.get("required", []):
        if value.get(key) in (None, ""):
            raise InvalidField(f"{name}.{key}", "is required")
    for key, v in value.items():
        _check(f"{name}.{key}", v, props[key])


def validate(data: Any, *, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Validate ``data`` against the schema (restricted to the fields ``only``) and return it
    with every missing optional field at its default.  Every invalid field is named at once
    (``InvalidFields``, an ``InvalidField`` naming the first): a form shows each by its field."""
    if not isinstance(data, dict):
        raise InvalidField("body", "must be a JSON object")
    props = schema()["properties"]
    allowed = only or tuple(props)
    errors: list[InvalidField] = []
    for key in data:
        if key not in allowed:
            errors.append(InvalidField(key, "unknown field"))
    missing = set()
    for key in schema()["required"]:
        if key in allowed and data.get(key) in (None, ""):
            errors.append(InvalidField(key, "is required"))
            missing.add(key)
    out = {}
    for key in allowed:
        if key in missing:
            continue
        rule = props[key]
        # a copy: the schema's default is shared, and a caller may change what it gets
        value = data.get(key, copy.deepcopy(rule.get("default")))
        try:
            if key == "mount_local_on_remote" and isinstance(value, list):
                value = [m if isinstance(m, dict) else parse_mount(m, key) for m in value]
            if key == "channels" and key not in data and data.get("slurm") is not None:
                value = "relay"  # the only way to reach a kernel on a compute node (see below)
            _check(key, value, rule)
        except InvalidField as e:
            errors.append(e)
            continue
        out[key] = _filled(key, value) if key in OBJECT_FIELDS and value is not None else value
    if not errors:
        _check_slurm_fits(out)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InvalidFields(errors)
    return out


# The optional sections (an object or null): set, every member is there (``_filled``)
OBJECT_FIELDS = ("container", "slurm")


def _filled(section: str, value: dict[str, Any]) -> dict[str, Any]:
    """Every member of a checked ``slurm`` or ``container`` object, a missing or null one at
    its default: the launch reads one shape."""
    members = schema()["properties"][section]["properties"]
    return {
        key: value[key] if value.get(key) is not None else copy.deepcopy(rule.get("default"))
        for key, rule in members.items()
    }


def _check_slurm_fits(model: dict[str, Any]) -> None:
    """What a Slurm kernel cannot have with it (the fields ``validate`` has checked)."""
    if model.get("slurm") is None:
        return
    if model.get("channels", "relay") != "relay":
        # the kernel on a compute node is reached over its job step's stdio (srun from the
        # login host); the cluster network gives no port an ssh forward could reach
        raise InvalidField(
            "channels",
            f"a Slurm kernel needs channels 'relay', not {model['channels']!r}: it is "
            "reached through its job, with no port to forward to",
        )
    if model.get("mount_local_on_remote"):
        raise InvalidField(
            "mount_local_on_remote", "SSHFS mounts are not supported on Slurm kernels yet"
        )


MOUNT_SYNTAX = "/local:/remote[:sshfs_options][:optional]"


def parse_mount(spec: Any, name: str = "mount_local_on_remote") -> dict[str, Any]:
    """``/local:/remote[:sshfs_options][:optional]`` as the CLI takes it, strictly."""
    if not isinstance(spec, str):
        raise InvalidField(name, f"{spec!r} must be '{MOUNT_SYNTAX}'")
    _no_control(name, spec)
    parts = spec.split(":")
    optional = len(parts) > 2 and parts[-1] == "optional"
    if optional:
        parts.pop()
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidField(name, f"{spec!r} must be '{MOUNT_SYNTAX}'")
    mount = {
        "local_path": parts[0],
        "remote_path": parts[1],
        "sshfs_options": parts[2] if len(parts) == 3 and parts[2] else None,
    }
    if optional:
        mount["optional"] = True
    _check_object(name, mount, schema()["properties"]["mount_local_on_remote"]["items"])
    return mount


def format_mount(mount: dict[str, Any]) -> str:
    text = f"{mount['local_path']}:{mount['remote_path']}"
    if mount.get("sshfs_options"):
        text += f":{mount['sshfs_options']}"
    return text + ":optional" if mount.get("optional") else text


# ---- the provisioner's view -------------------------------------------------------------------


@dataclass
class SSHKernelConfig:
    """``metadata.kernel_provisioner.config`` of an SSH kernelspec."""

    ssh_host_alias: str
    remote_python_prefix: str
    remote_kernel_name: str
    ssh_config: str | None = None
    ssh: str | None = None
    remote_cwd: str | None = None  # None: ~ (see remote_cwd.py)
    prelude: list = field(default_factory=list)
    launch_timeout: int = 60
    shutdown_timeout: int = 10
    lease_timeout: int = 3600
    lost_timeout: int = 60
    transport: str = "ipc"
    channels: str = "forward"
    ssh_master: str = "sshpyk"
    journal_limit_mb: int = 256
    remote_sshfs: str | None = None
    ssh_host_alias_local_on_remote: str | None = None
    mount_local_on_remote: list = field(default_factory=list)
    # None: no container; else every member of the schema's ``container`` (``validate``)
    container: dict | None = None
    # None: not a Slurm kernel; else every member of the schema's ``slurm`` (``validate``)
    slurm: dict | None = None

    @classmethod
    def from_dict(cls, data: Any) -> SSHKernelConfig:
        return cls(**validate(data, only=CONFIG_FIELDS))

    def to_dict(self) -> dict[str, Any]:
        """Only what differs from the defaults: kernel.json stays short and readable."""
        props = schema()["properties"]
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != props[f.name].get("default")
        }
        for section in OBJECT_FIELDS:  # {} stays: a Slurm kernel with the cluster's defaults
            value = getattr(self, section)
            if value is not None:
                # a required member stays even at its default: without it the section is
                # refused when read back (container.runtime: apptainer)
                members, required = props[section]["properties"], props[section].get("required", [])
                out[section] = {
                    k: v
                    for k, v in value.items()
                    if k in required or v != members.get(k, {}).get("default")
                }
        return out
