"""Where a kernel's remote programs run: the launch backend.

The remote kernel object never builds a remote command itself; it asks its backend.
``Direct`` runs them on the ssh host itself (the login shell's python of the kernelspec's
prefix); ``Slurm`` (``slurm.py``) in a Slurm job of the host's cluster.  ``prepare`` gets the
allocation before a launch (and says what it waits for through ``step``; it may wait as
long as a queue takes, outside the launch timeout, until ``cancel``), ``command`` runs a
program inside it (a job step rather than the login host), ``release`` ends it after the
kernel's end, ``describe`` adds what the status API should show (a job id, say),
``adopt`` takes up a re-attached kernel's allocation from its launcher's answer, and
``why_ended`` says why the kernel is gone when its allocation ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..model import SSHKernelConfig
from ..remote.protocol import python_command
from ..transport import Master


class LaunchBackend(Protocol):
    # the pids a session reports are on the ssh host: a `kill` over the master reaches them
    pids_reachable: bool
    # what the launcher is told besides the kernel's parameters
    launch_params: dict[str, Any]

    async def prepare(self, master: Master, step: Callable[[str], None], timeout: float) -> None:
        """Before a launch: whatever must exist for the kernel to start (restart included)."""

    def command(self, prefix: str) -> str:
        """The remote shell command running a program sent on stdin with ``prefix``'s python,
        where the kernel runs (see ``remote.protocol.program_stdin``)."""

    async def release(self, master: Master) -> None:
        """After the kernel's end (not a restart): give back what ``prepare`` got."""

    def describe(self) -> dict[str, Any]:
        """What the status API shows about this backend's kernel."""

    def adopt(self, remote: dict[str, Any]) -> None:
        """Re-attach: the allocation of a kernel whose launcher answered ``remote``."""

    async def why_ended(self, master: Master) -> str | None:
        """Why the kernel's allocation ended (said instead of "kernel died"), or None."""

    def cancel(self) -> None:
        """Stop a ``prepare`` that waits (the launch fails; ``release`` follows)."""


class Direct:
    """The kernel runs on the ssh host itself."""

    pids_reachable = True
    launch_params: dict[str, Any] = {}

    def __init__(self, prelude: tuple[str, ...] | list[str] = ()):
        self.prelude = tuple(prelude)  # the kernelspec's, before every program of the kernel

    async def prepare(self, master: Master, step: Callable[[str], None], timeout: float) -> None:
        return None

    def command(self, prefix: str) -> str:
        return python_command(prefix, prelude=self.prelude, preload="launcher")

    async def release(self, master: Master) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {}

    def adopt(self, remote: dict[str, Any]) -> None:
        return None

    async def why_ended(self, master: Master) -> str | None:
        return None

    def cancel(self) -> None:
        return None


def backend_for(cfg: SSHKernelConfig, kernel_id: str) -> LaunchBackend:
    """The launch backend a kernelspec asks for: the one place a backend is chosen."""
    if cfg.slurm is not None:  # {}: Slurm with the cluster's defaults
        from .slurm import Slurm

        return Slurm(cfg, kernel_id)
    return Direct(cfg.prelude)
