"""The SSH kernel model: the provisioner config stored in ``kernel.json``.

One source of truth for field names, defaults and validation: the provisioner reads
kernelspecs through it (and the CLI, REST API and Lab form build on it).  Every error
names the field and what is wrong, and nothing runs with a value that failed here.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

PROVISIONER_NAME = "sshpyk-provisioner"

# A plain ssh Host token: never an option (no leading "-"), no whitespace, quotes, control
# characters or shell metacharacters.
_ALIAS = re.compile(r"^[A-Za-z0-9_.@%+:\[\]][A-Za-z0-9_.@%+:\[\]-]*$")
_KERNEL_NAME = re.compile(r"^[a-z0-9._-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TIMEOUT_RANGE = (1, 3600)


class InvalidField(ValueError):
    """A field of the model has a bad value; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_alias(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidField(name, "must be a non-empty ssh Host alias")
    if value.startswith("-"):
        raise InvalidField(name, f"{value!r} starts with '-' (it would be read as an ssh option)")
    if len(value) > 255 or not _ALIAS.match(value):
        raise InvalidField(
            name,
            f"{value!r} is not a plain ssh Host alias (no spaces, quotes, control "
            "characters or shell metacharacters)",
        )
    return value


def check_remote_path(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidField(name, "must be a non-empty remote path")
    if _CONTROL.search(value):
        raise InvalidField(name, "must not contain newlines, NULs or control characters")
    if not (value.startswith("/") or value == "~" or value.startswith("~/")):
        raise InvalidField(name, f"{value!r} must be absolute or start with '~/'")
    return value


def check_local_path(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidField(name, "must be a non-empty path")
    if _CONTROL.search(value):
        raise InvalidField(name, "must not contain newlines, NULs or control characters")
    if value.startswith("-"):
        raise InvalidField(name, f"{value!r} starts with '-'")
    return value


def check_kernel_name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _KERNEL_NAME.match(value):
        raise InvalidField(name, f"{value!r} must match ^[a-z0-9._-]+$")
    return value


def check_timeout(name: str, value: Any) -> int:
    lo, hi = TIMEOUT_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidField(name, f"{value!r} must be a whole number of seconds from {lo} to {hi}")
    return value


@dataclass
class SSHKernelConfig:
    """``metadata.kernel_provisioner.config`` of an SSH kernelspec."""

    ssh_host_alias: str
    remote_python_prefix: str
    remote_kernel_name: str
    ssh_config: str | None = None
    ssh: str | None = None
    launch_timeout: int = 60
    shutdown_timeout: int = 10
    transport: str = "tcp"
    # SSHFS fields: accepted here, acted on by the SSHFS feature
    remote_sshfs: str | None = None
    ssh_host_alias_local_on_remote: str | None = None
    mount_local_on_remote: list = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any) -> SSHKernelConfig:
        if not isinstance(data, dict):
            raise InvalidField("config", "must be an object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidField(unknown[0], "unknown field")
        for req in ("ssh_host_alias", "remote_python_prefix", "remote_kernel_name"):
            if data.get(req) in (None, ""):
                raise InvalidField(req, "is required")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        check_alias("ssh_host_alias", self.ssh_host_alias)
        check_remote_path("remote_python_prefix", self.remote_python_prefix)
        check_kernel_name("remote_kernel_name", self.remote_kernel_name)
        if self.ssh_config is not None:
            check_local_path("ssh_config", self.ssh_config)
        if self.ssh is not None:
            check_local_path("ssh", self.ssh)
        check_timeout("launch_timeout", self.launch_timeout)
        check_timeout("shutdown_timeout", self.shutdown_timeout)
        if self.transport not in ("tcp", "ipc"):
            raise InvalidField("transport", f"{self.transport!r} must be 'tcp' or 'ipc'")
        if self.remote_sshfs is not None:
            check_remote_path("remote_sshfs", self.remote_sshfs)
        if self.ssh_host_alias_local_on_remote is not None:
            check_alias("ssh_host_alias_local_on_remote", self.ssh_host_alias_local_on_remote)
        if not isinstance(self.mount_local_on_remote, list):
            raise InvalidField("mount_local_on_remote", "must be a list")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}
