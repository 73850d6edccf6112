"""A raw SFTP v3 client for tests: sends exactly the requests an attacker on the remote
side could send to ``sshpyk.sftp_server``, with no client-side path clean-up; and the
``confinement`` fixture, which runs a test against each of the server's path resolvers."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import struct
import subprocess
import sys
import threading

import pytest

from sshpyk import no_openat2
from sshpyk import sftp_server as P

CONFINEMENTS = ["openat2", "walk"]
SERVER = [sys.executable, "-m", "sshpyk.sftp_server"]


def confined_by(stderr: bytes) -> str | None:
    """The resolver a server said it runs (None: it never got to serve)."""
    for line in stderr.decode(errors="replace").splitlines():
        if line.startswith(P.CONFINED_BY):
            return line[len(P.CONFINED_BY) :]
    return None


@pytest.fixture(params=CONFINEMENTS)
def confinement(request, monkeypatch, caplog):
    """The test, once with each of the server's resolvers (ids ``[openat2]``/``[walk]``).

    For ``walk`` openat2 is really gone from every server the test starts, as on Linux < 5.6:
    ``SSHPYK_SFTP_NO_OPENAT2=1`` makes the server's entry point install a seccomp filter
    answering ENOSYS.  Afterwards every server the test started (a ``Client``, ``run_server``,
    or a mount's, by its log) must have said that it ran this resolver, and there must be
    one: a test that started none ran against neither."""
    if request.param == "walk":
        monkeypatch.setenv(no_openat2.ENV, "1")
    else:
        monkeypatch.delenv(no_openat2.ENV, raising=False)
    caplog.set_level(logging.INFO, logger="sshpyk.mounts")
    first = len(STARTED)
    yield request.param
    said = []
    for started in STARTED[first:]:
        if isinstance(started, Client):
            if started.stderr is None:  # the test failed before closing it
                started.proc.kill()
                started.proc.wait()
                started.stderr = started.proc.stderr.read()
            started = started.stderr
        said.append(confined_by(started))
    for record in caplog.get_records("call"):  # a mount's server, through its log
        message = record.getMessage()
        if P.CONFINED_BY in message:
            said.append(message.split(P.CONFINED_BY, 1)[1].strip())
    served = [name for name in said if name is not None]  # None: refused before serving
    assert served, f"no SFTP server served in this test: nothing ran against {request.param}"
    assert set(served) == {request.param}, said


STARTED: list = []  # every Client and run_server stderr, for ``confinement``


def run_server(*args: str, input: bytes) -> subprocess.CompletedProcess:
    """The server run to its end on ``input`` (its stderr is checked by ``confinement``)."""
    proc = subprocess.run([*SERVER, *args], input=input, capture_output=True, timeout=30)
    STARTED.append(proc.stderr)
    return proc


def s(b: bytes | str) -> bytes:
    b = b.encode() if isinstance(b, str) else b
    return struct.pack(">I", len(b)) + b


def attrs(
    *,
    size: int | None = None,
    uid: int | None = None,
    gid: int | None = None,
    perm: int | None = None,
    times: tuple[int, int] | None = None,
) -> bytes:
    """An ATTRS field as a client would send it (any value the wire can carry)."""
    flags, body = 0, b""
    if size is not None:
        flags |= P.ATTR_SIZE
        body += struct.pack(">Q", size)
    if uid is not None or gid is not None:
        flags |= P.ATTR_UIDGID
        body += struct.pack(">II", uid or 0, gid or 0)
    if perm is not None:
        flags |= P.ATTR_PERMISSIONS
        body += struct.pack(">I", perm)
    if times is not None:
        flags |= P.ATTR_ACMODTIME
        body += struct.pack(">II", *times)
    return struct.pack(">I", flags) + body


class Client:
    timeout = 10.0  # a reply later than this means the server hangs

    def __init__(self, root: str, *args: str):
        self.proc = subprocess.Popen(
            [*SERVER, *args, root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stderr: bytes | None = None  # all the server said, once it ended
        STARTED.append(self)
        self.rid = 0
        self.buf = bytearray()
        self.raw(struct.pack(">BI", P.INIT, 3))
        kind, body = self.recv()
        assert kind == P.VERSION, kind
        r = P.Reader(body)
        self.version = r.u32()
        self.extensions: dict[bytes, bytes] = {}  # name -> version, as the server offers them
        while r.pos < len(body):
            name = r.string()
            self.extensions[name] = r.string()

    def raw(self, body: bytes) -> None:
        self.proc.stdin.write(struct.pack(">I", len(body)) + body)
        self.proc.stdin.flush()

    def _read(self, n: int) -> bytes:
        """Exactly ``n`` bytes of the reply stream (b"" at its end), or TimeoutError."""
        fd = self.proc.stdout.fileno()  # unbuffered reads: select must see all that is left
        while len(self.buf) < n:
            ready, _, _ = select.select([fd], [], [], self.timeout)
            if not ready:
                raise TimeoutError(f"no reply within {self.timeout:g} s: the server hangs")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b""
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return bytes(data)

    def recv(self) -> tuple[int, bytes]:
        head = self._read(4)
        if len(head) < 4:
            raise EOFError("server closed the stream")
        (n,) = struct.unpack(">I", head)
        body = self._read(n)
        return body[0], body[1:]

    def request(self, kind: int, *fields: bytes) -> tuple[int, P.Reader]:
        self.rid += 1
        self.raw(struct.pack(">BI", kind, self.rid) + b"".join(fields))
        rkind, body = self.recv()
        r = P.Reader(body)
        assert r.u32() == self.rid
        return rkind, r

    # ---- helpers returning (ok, value) or raising on a wrong reply type --------------------
    def status_of(self, kind: int, *fields: bytes) -> int:
        rkind, r = self.request(kind, *fields)
        if rkind == P.STATUS:
            return r.u32()
        return P.FX_OK

    def open(
        self, path: str | bytes, pflags: int = P.PF_READ, attr: bytes | None = None
    ) -> bytes | int:
        attr = struct.pack(">I", 0) if attr is None else attr
        rkind, r = self.request(P.OPEN, s(path), struct.pack(">I", pflags), attr)
        return r.string() if rkind == P.HANDLE else r.u32()

    def read_all(self, path: str | bytes) -> bytes | int:
        h = self.open(path)
        if isinstance(h, int):
            return h
        data, off = b"", 0
        while True:
            rkind, r = self.request(P.READ, s(h), struct.pack(">QI", off, 65536))
            if rkind == P.STATUS:
                break
            chunk = r.string()
            data += chunk
            off += len(chunk)
        self.request(P.CLOSE, s(h))
        return data

    def write_file(self, path: str | bytes, data: bytes) -> int:
        h = self.open(path, P.PF_WRITE | P.PF_CREAT | P.PF_TRUNC)
        if isinstance(h, int):
            return h
        code = self.status_of(P.WRITE, s(h), struct.pack(">Q", 0), s(data))
        self.request(P.CLOSE, s(h))
        return code

    def listdir(self, path: str | bytes) -> list[bytes] | int:
        rkind, r = self.request(P.OPENDIR, s(path))
        if rkind != P.HANDLE:
            return r.u32()
        h = r.string()
        names: list[bytes] = []
        while True:
            rkind, r = self.request(P.READDIR, s(h))
            if rkind == P.STATUS:
                break
            for _ in range(r.u32()):
                names.append(r.string())
                r.string()
                r.attrs()
        self.request(P.CLOSE, s(h))
        return names

    def realpath(self, path: str | bytes) -> bytes:
        rkind, r = self.request(P.REALPATH, s(path))
        assert rkind == P.NAME
        r.u32()
        return r.string()

    def close(self) -> int:
        self.proc.stdin.close()
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # a hung server must not outlive the test
            self.proc.wait()
            raise
        finally:
            self.stderr = self.proc.stderr.read()

    def confined_by(self) -> str | None:
        return confined_by(self.stderr or b"")


@contextlib.contextmanager
def flipping(share, outside):
    """While inside: a local thread flips ``share/sub`` between the real directory and a
    symlink to ``outside`` (a rename race against whatever resolves paths under it)."""
    real, parked, link = share / "sub", share / "parked", share / "flip"
    link.symlink_to(outside)
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            os.rename(real, parked)
            os.rename(link, real)  # sub -> outside
            os.rename(real, link)
            os.rename(parked, real)

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        yield
    finally:
        stop.set()
        flipper.join()
