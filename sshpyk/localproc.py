"""Local processes: start one whose stdout can be diverted, run a command with a timeout,
kill one without hanging, tell whether a pid is alive, fan out a bounded number at once; and
a free loopback port for a forward.

Everything that waits is async with a timeout, so the Jupyter server's event loop never
blocks on a child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

# ssh processes one fan-out (hosts of a config, checks, orphan probes) runs at once: each
# holds three pipes and, on Python 3.11, a waiter thread; unbounded, a few hundred hosts
# exhaust a 256-fd limit (macOS's default) and starve the rest of the server
SSH_AT_ONCE = 8
# a diverted stdout's read buffer: what a widened pipe (the relay's) holds, in one read
DIVERT_BUFFER = 1 << 20


async def gather_bounded(work, items) -> list:
    """``[await work(item) for item in items]``, at most ``SSH_AT_ONCE`` at a time."""
    gate = asyncio.Semaphore(SSH_AT_ONCE)

    async def one(item):
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's own, except that stdout can be diverted to a callback (``divert_stdout``)."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop):
        super().__init__(limit=limit, loop=loop)
        self.sink: Callable[[memoryview], None] | None = None
        self.stdout_closed = False

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1 and self.sink is not None:
            self.sink(memoryview(data))  # read by asyncio just before the diversion
        else:
            super().pipe_data_received(fd, data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.stdout_closed = True
            if self.sink is not None:
                self.sink(memoryview(b""))
        super().pipe_connection_lost(fd, exc)


class Process(asyncio.subprocess.Process):
    """``asyncio.subprocess.Process``, whose stdout can also be taken chunk by chunk."""

    def __init__(self, transport, protocol: _Protocol, loop: asyncio.AbstractEventLoop):
        super().__init__(transport, protocol, loop)
        self._diverter = protocol

    def stdout_fileno(self) -> int | None:
        """The fd of the pipe from the process (to size its buffer), None when it is gone."""
        pipe = self._transport.get_pipe_transport(1)
        return None if pipe is None else pipe.get_extra_info("pipe").fileno()

    async def divert_stdout(self, sink: Callable[[memoryview], None]) -> None:
        """From now on every chunk read from stdout goes to ``sink`` as it is read (an empty
        one at the end), what ``stdout`` held already first; ``stdout`` itself is at EOF
        after.  For a stream carried on at speed (the relay's), so the chunks are views of
        one buffer that the next read reuses: ``sink`` must use or copy a chunk before it
        returns.  asyncio's own reads make a new ``bytes`` of up to 256 KiB each, which
        glibc maps afresh and the read faults in page by page; a StreamReader would copy
        every byte twice more (a tenth of a burst's throughput, measured)."""
        reader = self.stdout
        reader.feed_eof()
        held = await reader.read()  # at EOF, a StreamReader returns without waiting
        if held:
            sink(memoryview(held))
        if self._diverter.stdout_closed:
            sink(memoryview(b""))
            return
        self._diverter.sink = sink  # the end (the pipe closed) still comes through asyncio
        pipe = self._transport.get_pipe_transport(1)
        fd = pipe.get_extra_info("pipe").fileno()
        pipe.pause_reading()  # asyncio reads no more: this fd's reader is the one below
        buf = bytearray(DIVERT_BUFFER)
        view = memoryview(buf)
        loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                n = os.readv(fd, [buf])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                n = 0  # as asyncio's own reader: a broken pipe is the end
            if n:
                sink(view[:n])
                return
            loop.remove_reader(fd)
            pipe.close()  # asyncio closes the fd and reports the end (the sink's b"")

        # the transport removes this reader itself when it closes (the fd is the same)
        loop.add_reader(fd, readable)


async def spawn(argv: list[str], **kw) -> Process:
    """``asyncio.create_subprocess_exec`` (which it mirrors), giving a ``Process``."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: _Protocol(limit=2**16, loop=loop), *argv, **kw
    )
    return Process(transport, protocol, loop)


async def kill_process(proc, grace: float = 2.0) -> None:
    """Kill a local process (an ssh client) and wait for it, without ever hanging.

    A mux client hands its stdio to the master, which keeps those pipes open while the
    remote command runs; asyncio only reports the exit once every pipe is closed, so after
    a grace period we close our ends ourselves.
    """
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except asyncio.TimeoutError:
        proc._transport.close()  # no public API closes the pipes of a running Process


async def communicate(proc, data: bytes | None, timeout: float) -> tuple[bytes, bytes]:
    """``proc.communicate(data)`` within ``timeout``; on timeout the process is killed and
    ``asyncio.TimeoutError`` raised."""
    try:
        return await asyncio.wait_for(proc.communicate(data), timeout)
    except asyncio.TimeoutError:
        await kill_process(proc)
        raise


async def run_local(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """A local command (``ssh -V``, ``ssh -G``): (rc, stdout, stderr); rc 124 on timeout."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await communicate(proc, None, timeout)
    except asyncio.TimeoutError:
        return 124, "", f"timed out after {timeout:g}s"
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def pid_alive(pid: int) -> bool:
    """Whether a local process ``pid`` exists and is not a zombie (of any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a killed child (of ours, or of a non-reaping init) lingers as a zombie: it is dead
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1] not in ("Z", "X")
    except OSError:
        pass
    return True


def free_local_port() -> int:
    """A 127.0.0.1 port free now (for a forward; it may be taken before ssh binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
