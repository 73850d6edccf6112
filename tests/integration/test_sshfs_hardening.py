"""The SFTP server against a hostile remote (issue #12: M1, L1, M7 and the EXDEV/EAGAIN notes):
raw protocol requests, as the remote side of a mount could send them, against both path
resolvers (``[openat2]``, ``[walk]``: ``sftp_wire.confinement``)."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import subprocess
import time

import pytest
import sftp_wire
from helpers import SETID, snapshot
from sftp_wire import Client, attrs, flipping, s

from sshpyk import confine
from sshpyk import sftp_server as P

confinement = sftp_wire.confinement  # the fixture: [openat2] and [walk]


@pytest.fixture
def share(tmp_path):
    root = tmp_path / "share"
    (root / "sub").mkdir(parents=True)
    (root / "inner.txt").write_bytes(b"inner")
    os.chmod(root / "inner.txt", 0o644)
    os.mkfifo(root / "fifo")
    return root


def handle(c: Client, path, pflags=P.PF_READ, attr=None) -> bytes:
    h = c.open(path, pflags, attr)
    assert isinstance(h, bytes), f"open {path!r}: status {h}"
    return h


# ---- M1: no setuid/setgid/sticky bit and no owner from the remote ------------------------


def test_remote_modes_lose_setid_bits_and_owner_changes_are_ignored(share, confinement):
    owner = os.stat(share / "inner.txt")
    c = Client(str(share))
    try:
        # OPEN with create
        h = handle(c, "made.sh", P.PF_WRITE | P.PF_CREAT, attrs(perm=0o6777))
        c.request(P.CLOSE, s(h))
        # MKDIR
        assert c.status_of(P.MKDIR, s("made.d"), attrs(perm=0o7777)) == P.FX_OK
        # SETSTAT, also with an owner change (the server runs as root here: chown would work)
        assert c.status_of(P.SETSTAT, s("inner.txt"), attrs(perm=0o4755)) == P.FX_OK
        assert c.status_of(P.SETSTAT, s("sub"), attrs(perm=0o1777)) == P.FX_OK
        assert c.status_of(P.SETSTAT, s("inner.txt"), attrs(uid=4242, gid=4242)) == P.FX_OK
        # FSETSTAT on a handle
        h = handle(c, "inner.txt", P.PF_READ | P.PF_WRITE)
        assert c.status_of(P.FSETSTAT, s(h), attrs(perm=0o6755, uid=0, gid=4242)) == P.FX_OK
        c.request(P.CLOSE, s(h))
    finally:
        assert c.close() == 0
    for name, perm in [("made.sh", 0o777), ("made.d", 0o777), ("inner.txt", 0o755), ("sub", 0o777)]:
        st = os.stat(share / name)
        assert st.st_mode & SETID == 0, (name, oct(st.st_mode))
        # the permission bits themselves are kept (less the umask for new files)
        assert st.st_mode & 0o700 == perm & 0o700, (name, oct(st.st_mode))
    st = os.stat(share / "inner.txt")
    assert (st.st_uid, st.st_gid) == (owner.st_uid, owner.st_gid)


# ---- #19: a local rename race never takes a request outside, whichever resolver ------------


def test_a_rename_race_never_takes_a_request_outside(share, tmp_path, confinement):
    """A local process flips sub/ between the real directory and a symlink to a directory
    outside (same names in it) while the remote reads, writes, chmods and makes directories
    in sub/: requests may fail, none may reach outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "inner.txt").write_bytes(b"outside")
    os.chmod(outside / "inner.txt", 0o644)
    (share / "sub" / "inner.txt").write_bytes(b"inside")
    before = snapshot(outside)
    c = Client(str(share))
    got = set()
    with flipping(share, outside):
        for _ in range(300):
            got.add(c.read_all("sub/inner.txt"))
            c.write_file("sub/new.txt", b"from the remote")
            c.status_of(P.SETSTAT, s("sub/inner.txt"), attrs(perm=0o600))
            c.status_of(P.MKDIR, s("sub/made"), attrs())
            c.status_of(P.RMDIR, s("sub/made"))
    assert c.close() == 0
    assert b"outside" not in got and b"inside" in got, got
    assert snapshot(outside) == before


# ---- L1: bad names and numbers are errors, never the end of the server --------------------

NUL = b"a\0b"


def nul_requests():
    """Every request that takes a name, with a NUL in each name it takes."""
    ext = P.EXTENDED
    return [
        (P.LSTAT, s(NUL)),
        (P.STAT, s(NUL)),
        (P.OPEN, s(NUL), struct.pack(">I", P.PF_READ), attrs()),
        (P.OPEN, s(b"sub/" + NUL), struct.pack(">I", P.PF_WRITE | P.PF_CREAT), attrs()),
        (P.OPENDIR, s(NUL)),
        (P.SETSTAT, s(NUL), attrs(perm=0o600)),
        (P.REMOVE, s(NUL)),
        (P.REMOVE, s(b"sub/" + NUL)),
        (P.MKDIR, s(NUL), attrs()),
        (P.RMDIR, s(NUL)),
        (P.READLINK, s(NUL)),
        (P.RENAME, s(NUL), s(b"x")),
        (P.RENAME, s(b"inner.txt"), s(NUL)),
        (P.RENAME, s(b"inner.txt"), s(b"sub/" + NUL)),
        (P.SYMLINK, s(b"target"), s(NUL)),
        (P.SYMLINK, s(NUL), s(b"link")),
        (ext, s(b"posix-rename@openssh.com"), s(NUL), s(b"x")),
        (ext, s(b"posix-rename@openssh.com"), s(b"inner.txt"), s(NUL)),
        (ext, s(b"hardlink@openssh.com"), s(NUL), s(b"x")),
        (ext, s(b"hardlink@openssh.com"), s(b"inner.txt"), s(NUL)),
        (ext, s(b"statvfs@openssh.com"), s(NUL)),
    ]


def test_nul_in_any_name_is_an_error_status(share, confinement):
    before = snapshot(share)
    c = Client(str(share))
    try:
        for kind, *fields in nul_requests():
            code = c.status_of(kind, *fields)
            assert code not in (P.FX_OK,), (kind, fields)
        assert c.read_all("inner.txt") == b"inner"  # still serving
    finally:
        assert c.close() == 0
    assert snapshot(share) == before


def test_offsets_and_sizes_beyond_off_t_are_errors(share, confinement):
    c = Client(str(share))
    try:
        h = handle(c, "inner.txt", P.PF_READ | P.PF_WRITE)
        for off in (1 << 63, (1 << 64) - 1):
            assert c.status_of(P.READ, s(h), struct.pack(">QI", off, 16)) != P.FX_OK
            assert c.status_of(P.WRITE, s(h), struct.pack(">Q", off), s(b"x")) != P.FX_OK
            assert c.status_of(P.FSETSTAT, s(h), attrs(size=off)) != P.FX_OK
            assert c.status_of(P.SETSTAT, s("inner.txt"), attrs(size=off)) != P.FX_OK
        c.request(P.CLOSE, s(h))
        assert c.read_all("inner.txt") == b"inner"
    finally:
        assert c.close() == 0


def test_truncating_a_fifo_is_refused_at_once(share, confinement):
    c = Client(str(share))
    c.timeout = 3
    try:
        t0 = time.monotonic()
        code = c.status_of(P.SETSTAT, s("fifo"), attrs(size=0))
        assert code == P.FX_PERMISSION_DENIED
        assert time.monotonic() - t0 < 2
        assert c.read_all("inner.txt") == b"inner"
    finally:
        assert c.close() == 0


# ---- M7: a read-only share is read-only in the local server -------------------------------


def test_read_only_share_refuses_every_write_request(share, confinement):
    before = snapshot(share)
    c = Client(str(share), "--read-only")
    try:
        assert c.read_all("inner.txt") == b"inner"
        assert sorted(c.listdir("/")) == [b".", b"..", b"fifo", b"inner.txt", b"sub"]
        denied = P.FX_PERMISSION_DENIED
        for pflags in (
            P.PF_WRITE,
            P.PF_READ | P.PF_WRITE,
            P.PF_READ | P.PF_APPEND,
            P.PF_READ | P.PF_CREAT,
            P.PF_READ | P.PF_TRUNC,
            P.PF_READ | P.PF_CREAT | P.PF_EXCL,
        ):
            assert c.open("inner.txt", pflags) == denied, pflags
            assert c.open("new.txt", pflags) == denied, pflags
        h = handle(c, "inner.txt")  # reading is fine ...
        # ... but no write through a handle either
        assert c.status_of(P.WRITE, s(h), struct.pack(">Q", 0), s(b"evil")) == denied
        assert c.status_of(P.FSETSTAT, s(h), attrs(perm=0o777)) == denied
        assert c.status_of(P.FSETSTAT, s(h), attrs(size=0)) == denied
        assert c.status_of(P.EXTENDED, s("fsync@openssh.com"), s(h)) == P.FX_OK
        c.request(P.CLOSE, s(h))
        ext = P.EXTENDED
        for kind, *fields in [
            (P.SETSTAT, s("inner.txt"), attrs(perm=0o777)),
            (P.SETSTAT, s("inner.txt"), attrs(size=0)),
            (P.SETSTAT, s("inner.txt"), attrs(times=(1, 1))),
            (P.REMOVE, s("inner.txt")),
            (P.MKDIR, s("newdir"), attrs()),
            (P.RMDIR, s("sub")),
            (P.RENAME, s("inner.txt"), s("moved.txt")),
            (P.SYMLINK, s("inner.txt"), s("link")),
            (ext, s("posix-rename@openssh.com"), s("inner.txt"), s("moved.txt")),
            (ext, s("hardlink@openssh.com"), s("inner.txt"), s("hard.txt")),
        ]:
            assert c.status_of(kind, *fields) == denied, (kind, fields)
        rkind, r = c.request(P.EXTENDED, s("statvfs@openssh.com"), s("/"))
        assert rkind == P.EXTENDED_REPLY
        for _ in range(9):
            r.u64()
        assert r.u64() & P.ST_RDONLY  # f_flag: the client may know before it tries
    finally:
        assert c.close() == 0
    assert snapshot(share) == before


# ---- minor notes: EXDEV is a failure mv can copy around, EAGAIN is retried ----------------


@pytest.fixture
def inner_mount(share):
    """A file system mounted inside the share (a rename into it is EXDEV)."""
    point = share / "sub"
    subprocess.run(["mount", "-t", "tmpfs", "spka-exdev", str(point)], check=True)
    yield point
    subprocess.run(["umount", "-l", str(point)], check=True)


def test_rename_across_file_systems_is_a_plain_failure(share, inner_mount, confinement):
    c = Client(str(share))
    try:
        for kind, *fields in [
            (P.RENAME, s("inner.txt"), s("sub/moved.txt")),
            (P.EXTENDED, s("posix-rename@openssh.com"), s("inner.txt"), s("sub/moved.txt")),
            (P.EXTENDED, s("hardlink@openssh.com"), s("inner.txt"), s("sub/hard.txt")),
        ]:
            # FX_FAILURE: sshfs -o workaround=renamexdev makes it EXDEV, and mv copies
            assert c.status_of(kind, *fields) == P.FX_FAILURE, (kind, fields)
    finally:
        assert c.close() == 0
    assert (share / "inner.txt").read_bytes() == b"inner"


class _Racing:
    """libc whose openat2 says EAGAIN (a rename raced the lookup) ``times`` times first."""

    def __init__(self, times: int):
        self.real = ctypes.CDLL(None, use_errno=True)
        self.real.syscall.restype = ctypes.c_long
        self.left = times
        self.calls = 0

    def syscall(self, *args):
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            ctypes.set_errno(errno.EAGAIN)
            return -1
        return self.real.syscall(*args)


def test_openat2_eagain_is_retried_a_bounded_number_of_times(share, monkeypatch):
    root = os.open(share, os.O_RDONLY | os.O_DIRECTORY)
    try:
        racing = _Racing(3)
        monkeypatch.setattr(confine, "_libc", lambda: racing)
        fd = confine.openat2(root, b"inner.txt", os.O_RDONLY)
        assert os.read(fd, 10) == b"inner" and racing.calls == 4
        os.close(fd)
        endless = _Racing(10**6)
        monkeypatch.setattr(confine, "_libc", lambda: endless)
        with pytest.raises(OSError) as e:
            confine.openat2(root, b"inner.txt", os.O_RDONLY)
        assert e.value.errno == errno.EAGAIN
        assert endless.calls == confine.EAGAIN_RETRIES + 1
    finally:
        os.close(root)
