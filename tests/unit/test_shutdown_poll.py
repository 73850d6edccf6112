"""How jupyter_client's polls of a kernel it told to shut down are answered: it asks every
0.1 s, so a poll then waits for the kernel's end (up to EXIT_WAIT) and the end is seen when
it comes.  Pure logic: RemoteKernel's own ``polled`` and the provisioner's ``poll`` and
``shutdown_requested`` on a kernel whose end the test decides; no ssh."""

from __future__ import annotations

import asyncio

from sshpyk.kernel import remote_kernel
from sshpyk.kernel.provisioner import SSHKernelProvisioner
from sshpyk.kernel.remote_kernel import RemoteKernel


class EndingKernel:
    """The part of a RemoteKernel that its polls read, with an end the test brings."""

    poll = RemoteKernel.poll
    polled = RemoteKernel.polled
    allocation_ended = None

    def __init__(self):
        self.remote = {"pid": 4242}
        self._exited = asyncio.Event()
        self._exit_code: int | None = None
        self.shutdown_asked = False

    def end(self, code: int) -> None:
        self._exit_code = code
        self._exited.set()

    def warm_launcher(self) -> None:
        """What a restart's shutdown request starts (nothing here)."""


async def _polls(shutdown: bool, end_after: float | None) -> list[int | None]:
    kernel = EndingKernel()
    prov = SSHKernelProvisioner.__new__(SSHKernelProvisioner)  # no kernelspec, no host
    prov.kernel = kernel
    if shutdown:
        await prov.shutdown_requested(restart=True)
    if end_after is not None:
        asyncio.get_running_loop().call_later(end_after, kernel.end, 0)
    first = await prov.poll()
    await asyncio.sleep((end_after or 0) + 0.05)
    return [first, await prov.poll()]


def test_a_kernel_told_to_shut_down_is_seen_ended_by_the_poll_it_ended_during():
    assert asyncio.run(_polls(shutdown=True, end_after=0.05)) == [0, 0]


def test_a_running_kernel_is_polled_without_waiting():
    # not told to shut down: the first poll answers "alive" at once, before the end
    assert asyncio.run(_polls(shutdown=False, end_after=0.05)) == [None, 0]


def test_a_kernel_that_does_not_end_is_still_alive_after_the_wait(monkeypatch):
    monkeypatch.setattr(remote_kernel, "EXIT_WAIT", 0.05)
    assert asyncio.run(_polls(shutdown=True, end_after=None)) == [None, None]
