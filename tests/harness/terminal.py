"""A program on a pseudo-terminal, driven like a user at a keyboard (stdlib only).

ssh reads passwords and one-time codes from its controlling terminal (/dev/tty), not from
stdin, so the program runs in its own session with the pty's slave as controlling terminal
(``setsid --ctty``: no fork in this, possibly threaded, process).
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import time


class Terminal:
    """``Terminal(argv)``; ``expect(regex)``, ``sendline(text)``, ``wait()``; ``close()``
    (or ``with``) ends the program by PID if it still runs."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        master, slave = os.openpty()
        try:
            self.proc = subprocess.Popen(
                ["setsid", "--ctty", *argv],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                close_fds=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.fd = master
        self.output = ""  # everything the program wrote so far
        self._seen = 0  # what expect() has consumed
        self._eof = False

    def _read(self, timeout: float) -> int:
        """Read what comes within ``timeout``: the number of bytes (0 also at the end)."""
        if self._eof:
            return 0
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return 0
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the last holder of the slave side is gone
            data = b""
        if not data:
            self._eof = True
        self.output += data.decode(errors="replace")
        return len(data)

    def expect(self, pattern: str, timeout: float = 15) -> re.Match:
        """Wait until the output after the last match matches ``pattern`` (a regex)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.output, self._seen)
            if m:
                self._seen = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or self._eof:
                why = "end of output" if self._eof else f"{timeout}s"
                raise AssertionError(f"{pattern!r} not seen ({why}); output: {self.output!r}")
            self._read(min(left, 0.2))

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def sendline(self, text: str) -> None:
        self.send(text + "\r")  # Enter, as a keyboard sends it

    def wait(self, timeout: float = 15) -> int:
        """The exit status, reading the output meanwhile (a full pty would block it)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout}s: {self.output!r}")
            if not self._read(0.05) and self._eof:
                time.sleep(0.02)
        while self._read(0):  # what it wrote just before exiting
            pass
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self.fd)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
