"""``sshpyk.sftp_server`` on the wire: the real server program as a subprocess serving a temp
dir, driven by the raw client of ``tests/sftp_wire.py`` (no sshd, no sshfs).  The hostile
cases of a mount (setid bits, FIFOs, escapes through symlinks) are in
``test_sshfs_hardening.py``; this is the protocol a well-behaved sshfs relies on, and the
malformed requests that must come back as SFTP errors.  Every test with a server runs against
both path resolvers (``[openat2]``, ``[walk]``: see ``sftp_wire.confinement``)."""

from __future__ import annotations

import os
import stat
import struct

import pytest
import sftp_wire
from sftp_wire import Client, attrs, s

from sshpyk import sftp_server as P

confinement = sftp_wire.confinement  # the fixture: [openat2] and [walk]

BIG = 1 << 63  # the first offset an off_t cannot hold


@pytest.fixture
def share(tmp_path):
    root = tmp_path / "share"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"hello, world\n")
    (root / "sub" / "deep.txt").write_bytes(b"deep")
    (tmp_path / "outside.txt").write_bytes(b"outside the share")
    return root


def serve(root, *args: str):
    """A running server on ``root``; closing it must end it with exit status 0."""
    c = Client(str(root), *args)
    try:
        yield c
    finally:
        assert c.close() == 0, c.stderr


@pytest.fixture
def client(share, confinement):
    yield from serve(share)


@pytest.fixture
def ro_client(share, confinement):
    yield from serve(share, "--read-only")


def handle(c: Client, path, pflags=P.PF_READ, attr=None) -> bytes:
    h = c.open(path, pflags, attr)
    assert isinstance(h, bytes), f"open {path!r}: status {h}"
    return h


def stat_of(c: Client, kind: int, *fields: bytes) -> dict:
    rkind, r = c.request(kind, *fields)
    assert rkind == P.ATTRS, (rkind, r.u32())
    return r.attrs()


def test_init_answers_version_3_with_the_openssh_extensions(client):
    assert client.version == 3
    assert client.extensions == P.EXTENSIONS


def test_read_a_file_whole_and_at_an_offset(client):
    assert client.read_all("hello.txt") == b"hello, world\n"
    h = handle(client, "hello.txt")
    rkind, r = client.request(P.READ, s(h), struct.pack(">QI", 7, 5))
    assert rkind == P.DATA and r.string() == b"world"
    # at the end: EOF, as a status
    assert client.status_of(P.READ, s(h), struct.pack(">QI", 13, 10)) == P.FX_EOF
    assert client.status_of(P.CLOSE, s(h)) == P.FX_OK


def test_write_create_truncate_and_read_back(client, share):
    assert client.write_file("new.bin", b"\0\1\2" * 1000) == P.FX_OK
    assert (share / "new.bin").read_bytes() == b"\0\1\2" * 1000
    assert client.write_file("new.bin", b"short") == P.FX_OK  # PF_TRUNC
    assert client.read_all("new.bin") == b"short"


def test_write_at_an_offset_and_append(client, share):
    h = handle(client, "hello.txt", P.PF_READ | P.PF_WRITE)
    assert client.status_of(P.WRITE, s(h), struct.pack(">Q", 7), s(b"WORLD")) == P.FX_OK
    client.request(P.CLOSE, s(h))
    assert (share / "hello.txt").read_bytes() == b"hello, WORLD\n"
    h = handle(client, "hello.txt", P.PF_WRITE | P.PF_APPEND)
    assert client.status_of(P.WRITE, s(h), struct.pack(">Q", 0), s(b"more\n")) == P.FX_OK
    client.request(P.CLOSE, s(h))
    assert (share / "hello.txt").read_bytes() == b"hello, WORLD\nmore\n"


def test_exclusive_create_of_an_existing_file_fails(client):
    flags = P.PF_WRITE | P.PF_CREAT | P.PF_EXCL
    assert client.open("hello.txt", flags) == P.FX_FAILURE
    assert isinstance(client.open("fresh.txt", flags), bytes)


def test_missing_files_are_no_such_file(client):
    assert client.open("nope.txt") == P.FX_NO_SUCH_FILE
    assert client.status_of(P.STAT, s("nope.txt")) == P.FX_NO_SUCH_FILE
    assert client.status_of(P.OPENDIR, s("nope")) == P.FX_NO_SUCH_FILE
    assert client.status_of(P.REMOVE, s("nope.txt")) == P.FX_NO_SUCH_FILE


def test_stat_lstat_and_fstat_describe_the_file(client, share, confinement):
    os.chmod(share / "hello.txt", 0o640)
    st = os.stat(share / "hello.txt")
    for a in (
        stat_of(client, P.STAT, s("hello.txt")),
        stat_of(client, P.LSTAT, s("hello.txt")),
        stat_of(client, P.FSTAT, s(handle(client, "hello.txt"))),
    ):
        assert a["size"] == 13 and a["perm"] == st.st_mode
        assert (a["uid"], a["gid"]) == (st.st_uid, st.st_gid)
        assert a["mtime"] == int(st.st_mtime)
    os.symlink("hello.txt", share / "link")
    assert stat.S_ISLNK(stat_of(client, P.LSTAT, s("link"))["perm"])
    if confinement == "openat2":
        assert stat.S_ISREG(stat_of(client, P.STAT, s("link"))["perm"])
    else:  # the walk never follows a link: STAT on one is refused
        assert client.status_of(P.STAT, s("link")) == P.FX_PERMISSION_DENIED


def test_setstat_changes_size_mode_and_times(client, share):
    assert client.status_of(P.SETSTAT, s("hello.txt"), attrs(size=5)) == P.FX_OK
    assert client.status_of(P.SETSTAT, s("hello.txt"), attrs(perm=0o600)) == P.FX_OK
    assert client.status_of(P.SETSTAT, s("hello.txt"), attrs(times=(1000, 2000))) == P.FX_OK
    st = os.stat(share / "hello.txt")
    assert (share / "hello.txt").read_bytes() == b"hello"
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert (int(st.st_atime), int(st.st_mtime)) == (1000, 2000)


def test_readdir_lists_dot_dotdot_and_every_entry_once(client, share):
    for i in range(P.READDIR_BATCH + 10):  # more than one READDIR reply
        (share / "sub" / f"f{i:03}").write_bytes(b"")
    names = client.listdir("sub")
    expected = [b".", b"..", b"deep.txt"] + [f"f{i:03}".encode() for i in range(138)]
    assert sorted(names) == sorted(expected) and len(names) == len(set(names))
    assert sorted(client.listdir("/")) == [b".", b"..", b"hello.txt", b"sub"]


def test_readdir_on_a_file_handle_and_read_on_a_dir_handle_fail(client):
    h = handle(client, "hello.txt")
    assert client.status_of(P.READDIR, s(h)) == P.FX_FAILURE
    rkind, r = client.request(P.OPENDIR, s("sub"))
    assert rkind == P.HANDLE
    d = r.string()
    assert client.status_of(P.READ, s(d), struct.pack(">QI", 0, 10)) != P.FX_OK


def test_mkdir_rename_remove_rmdir_symlink_readlink(client, share, confinement):
    assert client.status_of(P.MKDIR, s("made"), attrs(perm=0o750)) == P.FX_OK
    assert stat.S_IMODE(os.stat(share / "made").st_mode) == 0o750 & ~_umask()
    assert client.status_of(P.RENAME, s("hello.txt"), s("made/hi.txt")) == P.FX_OK
    assert (share / "made" / "hi.txt").read_bytes() == b"hello, world\n"
    # plain RENAME never replaces; the posix-rename extension does
    assert client.status_of(P.RENAME, s("sub/deep.txt"), s("made/hi.txt")) == P.FX_FAILURE
    ext = s(b"posix-rename@openssh.com")
    assert client.status_of(P.EXTENDED, ext, s("sub/deep.txt"), s("made/hi.txt")) == P.FX_OK
    assert (share / "made" / "hi.txt").read_bytes() == b"deep"
    assert client.status_of(P.SYMLINK, s("made/hi.txt"), s("ln")) == P.FX_OK
    rkind, r = client.request(P.READLINK, s("ln"))
    assert rkind == P.NAME and r.u32() == 1 and r.string() == b"made/hi.txt"
    # opening the link: followed inside the share by openat2, refused by the walk
    followed = b"deep" if confinement == "openat2" else P.FX_PERMISSION_DENIED
    assert client.read_all("ln") == followed
    assert client.status_of(P.RMDIR, s("made")) != P.FX_OK  # not empty
    assert client.status_of(P.REMOVE, s("made/hi.txt")) == P.FX_OK
    assert client.status_of(P.RMDIR, s("made")) == P.FX_OK
    assert sorted(os.listdir(share)) == ["ln", "sub"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_realpath_is_lexical_and_clamped_at_the_root(client):
    assert client.realpath(".") == b"/"
    assert client.realpath("sub/../../../etc") == b"/etc"
    assert client.realpath("/a/./b//c/..") == b"/a/b"


def test_paths_stay_in_the_share(client, share):
    assert client.read_all("../outside.txt") == P.FX_NO_SUCH_FILE
    assert client.read_all("/hello.txt") == b"hello, world\n"  # "/" is the share
    assert client.read_all("sub/../../hello.txt") == b"hello, world\n"


def test_statvfs_and_fsync_extensions(client):
    rkind, r = client.request(P.EXTENDED, s(b"statvfs@openssh.com"), s("/"))
    assert rkind == P.EXTENDED_REPLY
    values = struct.unpack_from(">11Q", r.buf, r.pos)
    assert values[0] > 0 and values[9] & P.ST_RDONLY == 0  # bsize, flag
    h = handle(client, "hello.txt", P.PF_WRITE)
    assert client.status_of(P.EXTENDED, s(b"fsync@openssh.com"), s(h)) == P.FX_OK


def test_hardlink_extension(client, share):
    ext = s(b"hardlink@openssh.com")
    assert client.status_of(P.EXTENDED, ext, s("hello.txt"), s("hard.txt")) == P.FX_OK
    assert os.stat(share / "hard.txt").st_ino == os.stat(share / "hello.txt").st_ino


# ---- malformed requests: SFTP errors, and the server carries on ------------------------------


# every request that takes a name, with a NUL in a name (one server for them all: each
# spawn costs more than the requests)
NUL_REQUESTS = [
    (P.STAT, [s(b"a\0b")]),
    (P.LSTAT, [s(b"sub/\0")]),
    (P.OPEN, [s(b"a\0b"), struct.pack(">I", P.PF_READ), attrs()]),
    (P.OPEN, [s(b"new\0"), struct.pack(">I", P.PF_WRITE | P.PF_CREAT), attrs()]),
    (P.OPENDIR, [s(b"sub\0")]),
    (P.MKDIR, [s(b"d\0x"), attrs()]),
    (P.REMOVE, [s(b"hello.txt\0")]),
    (P.RENAME, [s(b"hello.txt"), s(b"x\0y")]),
    (P.SYMLINK, [s(b"t\0"), s(b"link")]),
    (P.EXTENDED, [s(b"statvfs@openssh.com"), s(b"\0")]),
]


def test_a_nul_in_a_name_is_an_error_status(client, share):
    before = sorted(os.listdir(share))
    for kind, fields in NUL_REQUESTS:
        code = client.status_of(kind, *fields)
        assert code in (P.FX_BAD_MESSAGE, P.FX_FAILURE, P.FX_NO_SUCH_FILE), (kind, fields, code)
        assert sorted(os.listdir(share)) == before, (kind, fields)
    assert client.read_all("hello.txt") == b"hello, world\n"  # still serving


def test_offsets_beyond_off_t_are_bad_messages(client, share):
    h = handle(client, "hello.txt", P.PF_READ | P.PF_WRITE)
    for where in (BIG, BIG + 1, (1 << 64) - 1):
        read = client.status_of(P.READ, s(h), struct.pack(">QI", where, 10))
        write = client.status_of(P.WRITE, s(h), struct.pack(">Q", where), s(b"x"))
        setstat = client.status_of(P.SETSTAT, s("hello.txt"), attrs(size=where))
        assert (read, write, setstat) == (P.FX_BAD_MESSAGE,) * 3, where
    assert (share / "hello.txt").read_bytes() == b"hello, world\n"
    # a large offset that an off_t holds is read as one (nothing there)
    assert client.status_of(P.READ, s(h), struct.pack(">QI", 1 << 62, 10)) == P.FX_EOF


def test_unknown_handles_requests_and_extensions_are_errors(client):
    assert client.status_of(P.CLOSE, s(b"\0\0\0\x99")) == P.FX_FAILURE
    assert client.status_of(P.CLOSE, s(b"not a handle")) == P.FX_FAILURE
    assert client.status_of(P.READ, s(b"\0\0\0\x99"), struct.pack(">QI", 0, 1)) != P.FX_OK
    assert client.status_of(99) == P.FX_OP_UNSUPPORTED
    assert client.status_of(P.EXTENDED, s(b"copy-data")) == P.FX_OP_UNSUPPORTED
    assert client.read_all("hello.txt") == b"hello, world\n"


def test_a_truncated_request_is_a_bad_message(client):
    assert client.status_of(P.OPEN, s(b"hello.txt")) == P.FX_BAD_MESSAGE  # no pflags, attrs
    h = handle(client, "hello.txt")
    assert client.status_of(P.READ, s(h), b"\0\0") == P.FX_BAD_MESSAGE  # half an offset
    assert client.status_of(P.STAT, struct.pack(">I", 100) + b"short") == P.FX_BAD_MESSAGE


def test_a_closed_handle_is_gone(client):
    h = handle(client, "hello.txt")
    assert client.status_of(P.CLOSE, s(h)) == P.FX_OK
    assert client.status_of(P.CLOSE, s(h)) == P.FX_FAILURE


# ---- --read-only ----------------------------------------------------------------------------


WRITING_PFLAGS = [P.PF_WRITE, P.PF_READ | P.PF_WRITE] + [
    P.PF_READ | flag for flag in (P.PF_APPEND, P.PF_CREAT, P.PF_TRUNC, P.PF_EXCL)
]


def test_read_only_refuses_every_open_that_could_write(ro_client, share):
    for pflags in WRITING_PFLAGS:
        assert ro_client.open("hello.txt", pflags) == P.FX_PERMISSION_DENIED, pflags
        assert ro_client.open("fresh.txt", pflags) == P.FX_PERMISSION_DENIED, pflags
    assert sorted(os.listdir(share)) == ["hello.txt", "sub"]


def test_read_only_refuses_every_change_and_still_reads(ro_client, share):
    h = handle(ro_client, "hello.txt")
    denied = [
        (P.WRITE, s(h), struct.pack(">Q", 0), s(b"x")),
        (P.FSETSTAT, s(h), attrs(size=0)),
        (P.SETSTAT, s("hello.txt"), attrs(perm=0o777)),
        (P.REMOVE, s("hello.txt")),
        (P.MKDIR, s("made"), attrs()),
        (P.RMDIR, s("sub")),
        (P.RENAME, s("hello.txt"), s("moved.txt")),
        (P.SYMLINK, s("hello.txt"), s("ln")),
        (P.EXTENDED, s(b"posix-rename@openssh.com"), s("hello.txt"), s("moved.txt")),
        (P.EXTENDED, s(b"hardlink@openssh.com"), s("hello.txt"), s("hard.txt")),
    ]
    for kind, *fields in denied:
        assert ro_client.status_of(kind, *fields) == P.FX_PERMISSION_DENIED, kind
    assert sorted(os.listdir(share)) == ["hello.txt", "sub"]
    assert (share / "hello.txt").read_bytes() == b"hello, world\n"
    assert ro_client.read_all("hello.txt") == b"hello, world\n"
    assert sorted(ro_client.listdir("sub")) == [b".", b"..", b"deep.txt"]
    rkind, r = ro_client.request(P.EXTENDED, s(b"statvfs@openssh.com"), s("/"))
    assert rkind == P.EXTENDED_REPLY
    assert struct.unpack_from(">11Q", r.buf, r.pos)[9] & P.ST_RDONLY  # says it is read-only


def test_the_server_refuses_a_root_it_cannot_serve(tmp_path):
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "sshpyk.sftp_server", str(tmp_path / "missing")],
        input=b"",
        capture_output=True,
        timeout=30,
    )
    assert p.returncode == 1 and b"cannot serve" in p.stderr
    p = subprocess.run(
        [sys.executable, "-m", "sshpyk.sftp_server"], input=b"", capture_output=True, timeout=30
    )
    assert p.returncode == 2 and p.stderr.startswith(b"usage:")
