"""Processes for the test hosts: run a command, end processes by PID, and the harness's error."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

# pid_alive: /proc on Linux, ps without it (macOS); the harness imports it from here
from .procinfo import pid_alive


class HarnessError(RuntimeError):
    """The test hosts could not be built or checked; the message says why."""


def run(argv: list[str], *, check: bool = True, timeout: float = 30, **kw):
    """Run a command, raising HarnessError with its stderr when it fails."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if check and proc.returncode != 0:
        raise HarnessError(f"{' '.join(argv)} -> rc {proc.returncode}: {proc.stderr.strip()}")
    return proc


def is_root() -> bool:
    return os.geteuid() == 0


def kill_pids(pids, grace: float = 2.0) -> None:
    """TERM, wait up to ``grace`` seconds, then KILL whatever is left."""
    pids = [p for p in {int(p) for p in pids} if p > 1 and p != os.getpid()]
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.02)
    for p in pids:
        if pid_alive(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
