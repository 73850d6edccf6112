"""Where a kernel's remote programs run: the launch backend.

The remote kernel object never builds a remote command itself; it asks its backend.
``Direct`` runs them on the ssh host itself (the login shell's python of the kernelspec's
prefix).  A backend for a batch system plugs in here: ``prepare`` gets the allocation before
a launch (and says what it waits for through ``step``), ``command`` runs a program inside it
(a job step rather than the login host), ``release`` ends it after the kernel's end, and
``describe`` adds what the status API should show (a job id, say).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..model import SSHKernelConfig
from ..remote.protocol import python_command
from ..transport import Master


class LaunchBackend(Protocol):
    async def prepare(self, master: Master, step: Callable[[str], None], timeout: float) -> None:
        """Before a launch: whatever must exist for the kernel to start (restart included)."""

    def command(self, prefix: str) -> str:
        """The remote shell command running a program sent on stdin with ``prefix``'s python,
        where the kernel runs (see ``remote.protocol.program_stdin``)."""

    async def release(self, master: Master) -> None:
        """After the kernel's end (not a restart): give back what ``prepare`` got."""

    def describe(self) -> dict[str, Any]:
        """What the status API shows about this backend's kernel."""


class Direct:
    """The kernel runs on the ssh host itself."""

    async def prepare(self, master: Master, step: Callable[[str], None], timeout: float) -> None:
        return None

    def command(self, prefix: str) -> str:
        return python_command(prefix)

    async def release(self, master: Master) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {}


def backend_for(cfg: SSHKernelConfig) -> LaunchBackend:
    """The launch backend a kernelspec asks for: the one place a second backend plugs in."""
    return Direct()
