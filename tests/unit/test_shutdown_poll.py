"""How the provisioner answers jupyter_client's polls of a kernel it was told to shut down:
jupyter_client asks every 0.1 s, so a poll then waits for the kernel's end (up to EXIT_WAIT)
and the end is seen when it comes.  Pure logic: the provisioner's and RemoteKernel's own
``poll`` code on a kernel whose end the test decides; no ssh."""

from __future__ import annotations

import asyncio

import pytest

from sshpyk.kernel import provisioner as provisioner_module
from sshpyk.kernel.provisioner import SSHKernelProvisioner
from sshpyk.kernel.remote_kernel import RemoteKernel


class EndingKernel:
    """The part of a RemoteKernel that its polls read, with an end the test brings."""

    poll = RemoteKernel.poll
    poll_within = RemoteKernel.poll_within
    allocation_ended = None

    def __init__(self):
        self.remote = {"pid": 4242}
        self._exited = asyncio.Event()
        self._exit_code: int | None = None

    def end(self, code: int) -> None:
        self._exit_code = code
        self._exited.set()


def provisioner(kernel: EndingKernel) -> SSHKernelProvisioner:
    prov = SSHKernelProvisioner.__new__(SSHKernelProvisioner)  # no kernelspec, no host
    prov.kernel = kernel
    prov._shutting_down = prov._restarting = False  # as __init__ leaves them
    return prov


async def _polls(shutdown: bool, end_after: float | None) -> list[int | None]:
    kernel = EndingKernel()
    prov = provisioner(kernel)
    if shutdown:
        await prov.shutdown_requested(restart=False)
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
    monkeypatch.setattr(provisioner_module, "EXIT_WAIT", 0.05)
    assert asyncio.run(_polls(shutdown=True, end_after=None)) == [None, None]


@pytest.mark.parametrize("restart", [False, True])
def test_a_launch_polls_without_waiting_again(restart):
    async def scenario():
        kernel = EndingKernel()
        prov = provisioner(kernel)
        prov.kernel.warm_launcher = lambda: None  # what a restart's request starts
        await prov.shutdown_requested(restart=restart)
        assert prov._shutting_down
        prov._launched()  # what launch_kernel does first
        asyncio.get_running_loop().call_later(0.05, kernel.end, 0)
        return await prov.poll()

    assert asyncio.run(scenario()) is None
