"""What a kernel costs the Jupyter server's process in open files (issue #19: macOS starts
a process with 256), measured on /proc/self/fd (/dev/fd where there is no /proc) with real
kernels on the test hosts.

The kernel managers run in this process, as in a Jupyter server, each with one client (what
an open notebook's websocket holds).  A first kernel, started and shut down, warms what is
made once per process (ZeroMQ's context, the host's master, which is a process of its own);
then two kernels run at once, and each must cost at most ``FDS_PER_KERNEL``, the number the
README gives, and give everything back when shut down.
"""

from __future__ import annotations

import os
import sys

from helpers import start, wait_until

from sshpyk.local_platform import FDS_PER_KERNEL

# this process's open fds: Linux's /proc, else /dev/fd (macOS and the BSDs list every open
# descriptor of the process reading it there)
FD_DIR = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"


def open_fds() -> int:
    return len(os.listdir(FD_DIR)) - 1  # listdir's own


async def test_fds_per_kernel_are_bounded_and_given_back(specs, managers, channels):
    name = specs()
    km = managers(name)
    kc = await start(km)
    kc.stop_channels()
    await km.shutdown_kernel()
    before = open_fds()

    kms, kcs = [], []
    for _ in range(2):
        km = managers(name)
        kcs.append(await start(km))
        kms.append(km)
    per_kernel = (open_fds() - before) / 2
    sys.stderr.write(f"\nfds per kernel ({channels}, one client each): {per_kernel:g}\n")
    assert 0 < per_kernel <= FDS_PER_KERNEL, per_kernel

    for km, kc in zip(kms, kcs, strict=True):
        kc.stop_channels()
        await km.shutdown_kernel()

    # ZeroMQ closes a stopped client's sockets in its I/O thread: a moment later
    async def given_back() -> bool:
        return open_fds() <= before

    assert await wait_until(given_back, 10), (open_fds(), before)
