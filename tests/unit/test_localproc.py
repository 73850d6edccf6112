"""Local processes started by ``localproc.spawn`` (as every ssh session is): stdout read line by
line first, then diverted chunk by chunk (the relay's stream).  Real child processes (a
Python one-liner), no ssh."""

from __future__ import annotations

import asyncio
import sys

from sshpyk.localproc import spawn

PIPE = asyncio.subprocess.PIPE
# a line, then 4 MiB in writes of 64 KiB (many pipe reads), each byte telling its position
WRITER = (
    "import sys\n"
    "out = sys.stdout.buffer\n"
    "out.write(b'hello\\n'); out.flush()\n"
    "sys.stdin.readline()\n"
    "data = bytes(i % 251 for i in range(4 << 20))\n"
    "for i in range(0, len(data), 65536):\n"
    "    out.write(data[i:i + 65536]); out.flush()\n"
)
EXPECTED = bytes(i % 251 for i in range(4 << 20))


async def _divert_after_a_line() -> tuple[bytes, list[bytes], int]:
    proc = await spawn([sys.executable, "-c", WRITER], stdin=PIPE, stdout=PIPE, stderr=PIPE)
    line = await proc.stdout.readline()
    chunks: list[bytes] = []
    ended = asyncio.get_running_loop().create_future()

    def sink(data: memoryview) -> None:
        chunks.append(bytes(data))  # a view of a buffer the next read reuses
        if not data:
            ended.set_result(None)

    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    await proc.divert_stdout(sink)
    await asyncio.wait_for(ended, 30)
    return line, chunks, await asyncio.wait_for(proc.wait(), 10)


def test_diverted_stdout_gets_every_byte_once_in_order_then_the_end():
    line, chunks, rc = asyncio.run(_divert_after_a_line())
    assert line == b"hello\n" and rc == 0
    assert chunks[-1] == b"" and b"" not in chunks[:-1]  # the end, once, last
    assert b"".join(chunks) == EXPECTED
    assert len(chunks) > 2  # as read: many chunks, not one buffered blob


async def _divert_what_was_read_already() -> tuple[list[bytes], int]:
    code = "import sys; sys.stdout.buffer.write(b'line\\n' + b'x' * 100000)"
    proc = await spawn([sys.executable, "-c", code], stdout=PIPE, stderr=PIPE)
    assert await proc.stdout.readline() == b"line\n"
    rc = await asyncio.wait_for(proc.wait(), 10)  # exited: stdout read to its end already
    chunks: list[bytes] = []
    await proc.divert_stdout(lambda chunk: chunks.append(bytes(chunk)))
    return chunks, rc


def test_what_stdout_held_goes_first_and_a_closed_pipe_ends_at_once():
    chunks, rc = asyncio.run(_divert_what_was_read_already())
    assert rc == 0 and chunks == [b"x" * 100000, b""]


async def _a_plain_run() -> tuple[bytes, bytes, int]:
    code = "import sys; sys.stdout.write(sys.stdin.read().upper()); sys.stderr.write('e')"
    proc = await spawn([sys.executable, "-c", code], stdin=PIPE, stdout=PIPE, stderr=PIPE)
    out, err = await proc.communicate(b"abc")
    return out, err, proc.returncode


def test_an_undiverted_process_is_asyncios_own():
    assert asyncio.run(_a_plain_run()) == (b"ABC", b"e", 0)
