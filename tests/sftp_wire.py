"""A raw SFTP v3 client for tests: sends exactly the requests an attacker on the remote
side could send to ``sshpyk.sftp_server``, with no client-side path clean-up."""

from __future__ import annotations

import struct
import subprocess
import sys

from sshpyk import sftp_server as P


def s(b: bytes | str) -> bytes:
    b = b.encode() if isinstance(b, str) else b
    return struct.pack(">I", len(b)) + b


class Client:
    def __init__(self, root: str, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sshpyk.sftp_server", *args, root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.rid = 0
        self.raw(struct.pack(">BI", P.INIT, 3))
        kind, body = self.recv()
        assert kind == P.VERSION, kind
        self.version = struct.unpack_from(">I", body)[0]

    def raw(self, body: bytes) -> None:
        self.proc.stdin.write(struct.pack(">I", len(body)) + body)
        self.proc.stdin.flush()

    def recv(self) -> tuple[int, bytes]:
        head = self.proc.stdout.read(4)
        if len(head) < 4:
            raise EOFError("server closed the stream")
        (n,) = struct.unpack(">I", head)
        body = self.proc.stdout.read(n)
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

    def open(self, path: str | bytes, pflags: int = P.PF_READ) -> bytes | int:
        rkind, r = self.request(P.OPEN, s(path), struct.pack(">II", pflags, 0))
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
        return self.proc.wait(5)
