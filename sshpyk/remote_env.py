"""What a remote Python environment offers: one run of ``remote/inspect.py`` on a master.

Used by the health checks (``checks.py``) and by kernelspec discovery (the hosts handler):
the system, python, jupyter_client and its kernelspecs, sshfs, and whether mount points are
usable.  ``{"error": "prefix_missing" | "python_missing"}`` when the environment is not there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import SSHPykError
from .remote.protocol import SHELL_PID, messages, program_stdin, python_command

TIMEOUT = 20.0  # seconds for an inspection (and, for discovery, the connection before it)


async def inspect(
    master: Any,
    prefix: str,
    *,
    sshfs: str | None = None,
    mount_points: Iterable[str] = (),
    timeout: float = TIMEOUT,
    prelude: tuple[str, ...] = (),
) -> dict:
    """The inspection of the environment at ``prefix`` on ``master``'s host (the master is
    up: see ``Master.ensure``), within ``timeout`` seconds; ``sshfs``: the sshfs the kernel
    names (None: the one on $PATH); ``mount_points``: remote paths to judge for mounting;
    ``prelude``: the kernelspec's, run first as for the kernel (a module's python).
    Raises ``SSHPykError`` (kind ``inspect_failed``) when the program said nothing."""
    params = {"sshfs": sshfs, "mount_points": list(mount_points)}
    rc, out, err = await master.run(
        python_command(prefix, prelude=prelude),
        input=program_stdin("inspect", params),
        timeout=timeout,
    )
    found = [m for m in messages(out) if SHELL_PID not in m]
    if not found:
        raise SSHPykError(
            f"remote inspection failed: {err.strip()[-300:] or rc}", kind="inspect_failed"
        )
    return found[0]
