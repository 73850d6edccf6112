"""What runs where: one record per SSH kernel this machine started, so that a kernel can be
found, re-attached or shut down after the Jupyter server that started it is gone.

Records live in ``<jupyter runtime dir>/sshpyk`` (0700), one ``<kernel_id>.json`` (0600)
each, written atomically.  They hold the kernel's HMAC key, like Jupyter's own connection
files next to them: re-attaching needs it.  A record is written when a kernel has started,
rewritten on restart and removed at shutdown; a record whose server is gone is an orphan.
A server is known by its pid *and* a random nonce: a container restarts Jupyter with the same
pid, and the new server must still see the old server's kernels as orphans.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_runtime_dir

from .errors import SSHPykError
from .localfs import private_dir, try_flock
from .localproc import pid_alive

# this server process, among all that ever had its pid
SERVER_NONCE = secrets.token_hex(8)


@dataclass
class Record:
    kernel_id: str
    kernelspec: str
    display_name: str
    config: dict[str, Any]  # the kernelspec's provisioner config (host, prefix, ...)
    remote: dict[str, Any]  # what the launcher reported: pid, pgid, ports, rundir, ...
    key: str
    signature_scheme: str
    started_at: float
    server_pid: int = field(default_factory=os.getpid)
    local_ports: list[int] | None = None
    server_nonce: str = field(default_factory=lambda: SERVER_NONCE)

    @property
    def host_alias(self) -> str:
        return self.config["ssh_host_alias"]

    def public(self) -> dict[str, Any]:
        """Everything but the key: for listings."""
        d = asdict(self)
        d.pop("key")
        d["host_alias"] = self.host_alias
        d["orphan"] = self.orphan
        return d

    @property
    def orphan(self) -> bool:
        if self.server_pid <= 0:  # abandoned: its server shut it down without confirmation
            return True
        if self.server_pid == os.getpid():
            # ours, or a previous server's that had our pid (container restart)
            return self.server_nonce != SERVER_NONCE
        return not pid_alive(self.server_pid)


def directory() -> Path:
    d = Path(jupyter_runtime_dir()) / "sshpyk"
    d.parent.mkdir(parents=True, exist_ok=True)
    return private_dir(d)


def _path(kernel_id: str) -> Path:
    if not kernel_id or "/" in kernel_id or "\0" in kernel_id or kernel_id.startswith("."):
        raise SSHPykError(f"invalid kernel id {kernel_id!r}")
    return directory() / f"{kernel_id}.json"


def save(record: Record) -> None:
    path = _path(record.kernel_id)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(record), f)
        os.replace(tmp, path)
    except BaseException:
        # a full disk (or a value json cannot write) must not leave a half file behind
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def remove(kernel_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _path(kernel_id).unlink()
    with contextlib.suppress(FileNotFoundError):
        _path(kernel_id).with_suffix(".claim").unlink()


class Busy(SSHPykError):
    kind = "busy"


@contextlib.contextmanager
def claim(kernel_id: str):
    """Hold the kernel's record against every other process (a second server sharing the
    registry, the CLI) while re-attaching it: an flock, dropped by the kernel if we die.
    Raises ``Busy`` when someone else holds it."""
    fd = try_flock(_path(kernel_id).with_suffix(".claim"))
    if fd is None:
        raise Busy(f"kernel {kernel_id} is being re-attached by another request")
    try:
        yield
    finally:
        os.close(fd)


def abandon(kernel_id: str) -> None:
    """Keep the record, owned by no server: an orphan from now on."""
    rec = load(kernel_id)
    if rec is not None:
        rec.server_pid = -1
        save(rec)


def load(kernel_id: str) -> Record | None:
    try:
        return _record(json.loads(_path(kernel_id).read_text()))
    except FileNotFoundError:
        return None


def _record(data: dict) -> Record:
    if not isinstance(data, dict):
        raise TypeError("not a record")
    # a record written before nonces: its server is unknown, so same pid is not enough
    data.setdefault("server_nonce", "")
    return Record(**data)


def all_records() -> tuple[list[Record], list[str]]:
    """Every record, and the names of files that are not valid records."""
    records, bad = [], []
    for p in sorted(directory().glob("*.json")):
        try:
            records.append(_record(json.loads(p.read_text())))
        except (OSError, ValueError, TypeError):
            bad.append(p.name)
    records.sort(key=lambda r: r.started_at)
    return records, bad
