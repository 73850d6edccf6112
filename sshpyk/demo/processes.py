"""The demo's processes: telling our sshd from a stranger that reused its pid, finding every
process of the sandbox's sessions (kernels included), ending them by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from ..localproc import pid_alive
from .config import ENV_MARK

STOP_GRACE = 2.0  # s between TERM and KILL

# sshd children we spawned in this process: kept so they can be reaped (no zombies, no
# "subprocess still running" ResourceWarning when the Popen would be collected).
_CHILDREN: dict[int, subprocess.Popen] = {}


def track(proc: subprocess.Popen) -> None:
    _CHILDREN[proc.pid] = proc


def forget(pid: int) -> None:
    _CHILDREN.pop(pid, None)


def reap_children() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"


def is_our_sshd(pid: int, root: Path, identity: str | None = None) -> bool:
    """Alive and really this sandbox's sshd (a recorded pid may have been reused since)."""
    if pid <= 1 or not pid_alive(pid):
        return False
    if not Path("/proc/self").exists():
        # No /proc (macOS): the process must still have the start time and command it had
        # when we started it; what cannot be proven is a stranger, never to be killed.
        return identity is not None and process_identity(pid) == identity
    return str(root / "sshd_config") in cmdline(pid) or _holds_log(pid, root)


def process_identity(pid: int) -> str | None:
    """A process's start time and executable name, which a reused pid does not share (not
    its command line: sshd rewrites that as its process title); None when unreadable."""
    try:
        # /proc/<pid>/stat: "pid (comm) state ..."; field 22 is the start time in ticks
        head, rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
        return f"proc {rest.split()[19]} {head.split('(', 1)[1]}"
    except (OSError, IndexError):
        pass
    try:
        r = subprocess.run(
            ["ps", "-o", "lstart=", "-o", "comm=", "-p", str(pid)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = r.stdout.strip()
    return f"ps {line}" if r.returncode == 0 and line else None


def _holds_log(pid: int, root: Path) -> bool:
    """Whether ``pid`` has our sshd.log open: true of every sshd process of the sandbox.

    sshd overwrites its environment block with its process title, so neither the listener
    nor the per-connection sshds show a readable marker; all of them keep the -E log open.
    """
    log = str(root / "sshd.log")
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd) in (log, log + " (deleted)"):
                return True
    return False


def _ancestors() -> set[int]:
    """Our own pid and its ancestors: never kill the caller, even if it runs in the demo."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat_line = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat_line.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def marked_pids(root: Path) -> set[int]:
    """Every sshd of the sandbox, and every process of its sessions (kernels included)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return set()
    mark = f"{ENV_MARK}={root}".encode()
    skip = _ancestors()
    found = set()
    for d in proc.iterdir():
        if not d.name.isdigit() or int(d.name) in skip:
            continue
        pid = int(d.name)
        if (mark in _environ(pid) or _holds_log(pid, root)) and pid_alive(pid):
            found.add(pid)
    return found


def kill(pids: set[int] | list[int]) -> None:
    """TERM, wait up to STOP_GRACE seconds, then KILL; reap those that are our children."""
    pids = {p for p in pids if p > 1}
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        reap_children()
        time.sleep(0.01)
    for p in pids:
        if pid_alive(p):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGKILL)
    for p in pids:
        proc = _CHILDREN.pop(p, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
