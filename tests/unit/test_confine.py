"""``sshpyk.confine``'s two resolvers in this process (no server), the choice between them, and
the seccomp switch that takes openat2 away for the ``[walk]`` runs of the SSHFS suite."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import subprocess
import sys

import pytest
import sftp_wire
from sftp_wire import flipping

from sshpyk import confine, no_openat2
from sshpyk import sftp_server as P

SECRET = b"outside the share"
RESOLVERS = {"openat2": confine.Openat2, "walk": confine.Walk}


@pytest.fixture
def tree(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    share = tmp_path / "share"
    (share / "sub").mkdir(parents=True)
    (share / "sub" / "secret.txt").write_bytes(b"inside")
    (share / "dir_link").symlink_to("sub")  # a link to a directory inside the share
    (share / "out_link").symlink_to(outside)
    return share, outside


@pytest.fixture(params=sorted(RESOLVERS))
def paths(request, tree):
    root = os.open(tree[0], os.O_RDONLY | os.O_DIRECTORY)
    yield RESOLVERS[request.param](root)
    os.close(root)


def read(paths, path: bytes) -> bytes:
    fd = paths.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)


def test_both_resolvers_keep_to_the_share(paths):
    assert read(paths, b"sub/secret.txt") == b"inside"
    assert read(paths, b"/../sub/../../sub/secret.txt") == b"inside"
    for path in (b"../outside/secret.txt", b"out_link/secret.txt", b"/out_link/../secret.txt"):
        with pytest.raises(OSError):
            read(paths, path)
    pfd, name = paths.parent(b"../../sub/secret.txt")
    try:
        assert name == b"secret.txt" and os.stat(name, dir_fd=pfd).st_size == 6
    finally:
        os.close(pfd)


def test_the_walk_never_follows_a_link_even_one_inside(tree):
    share, _ = tree
    root = os.open(share, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # openat2 follows dir_link inside the share; the walk refuses the path (ELOOP)
        assert read(confine.Openat2(root), b"dir_link/secret.txt") == b"inside"
        walk = confine.Walk(root)
        for call in (
            lambda: walk.open(b"dir_link/secret.txt", os.O_RDONLY),
            lambda: walk.open(b"dir_link", os.O_RDONLY),
            lambda: walk.stat(b"dir_link"),
            lambda: walk.statvfs(b"out_link"),
            lambda: walk.parent(b"dir_link/x"),
        ):
            with pytest.raises(OSError) as e:
                call()
            assert e.value.errno == errno.ELOOP, e.value
        # the link itself is there to act on by name (lstat, readlink, remove)
        pfd, name = walk.parent(b"dir_link")
        try:
            assert os.readlink(name, dir_fd=pfd) == b"sub"
        finally:
            os.close(pfd)
    finally:
        os.close(root)


def test_a_rename_race_never_leads_outside(paths, tree):
    """``sub`` flips between the real directory and a symlink to outside/ while the
    resolver opens ``sub/secret.txt`` again and again: it may fail, never read outside."""
    share, outside = tree
    got = set()
    with flipping(share, outside):
        for _ in range(3000):
            try:
                got.add(read(paths, b"sub/secret.txt"))
            except OSError:
                got.add(None)
    assert SECRET not in got
    assert b"inside" in got  # the race did run both ways


def test_no_known_number_means_the_walk_without_any_raw_syscall(tmp_path, monkeypatch):
    class NoSyscall:
        def __getattr__(self, name):
            raise AssertionError(f"a raw syscall ({name}) where openat2's number is unknown")

    monkeypatch.setattr(confine, "_libc", NoSyscall)
    monkeypatch.setattr(confine, "openat2_number", lambda: None)
    assert confine.check_supported(str(tmp_path)) == "walk"


class _Answers:
    """A libc whose openat2 fails with ``err``."""

    def __init__(self, err: int):
        self.err = err

    def syscall(self, *args):
        ctypes.set_errno(self.err)
        return -1


@pytest.mark.parametrize(
    ("err", "chosen"), [(errno.ENOSYS, "walk"), (errno.EPERM, "walk"), (None, "openat2")]
)
def test_choose_walks_where_openat2_says_enosys_or_eperm(tmp_path, monkeypatch, err, chosen):
    if err is not None:
        monkeypatch.setattr(confine, "_libc", lambda: _Answers(err))
    assert confine.check_supported(str(tmp_path)) == chosen


def test_other_openat2_errors_are_not_taken_for_a_missing_openat2(tmp_path, monkeypatch):
    monkeypatch.setattr(confine, "_libc", lambda: _Answers(errno.EACCES))
    with pytest.raises(PermissionError):
        confine.check_supported(str(tmp_path))


SECCOMP_PROBE = """
import ctypes, errno, json, os, sys
from sshpyk import confine, no_openat2
root = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
how = confine._OpenHow(0, 0, 0)
def raw():
    fd = libc.syscall(ctypes.c_long(437), ctypes.c_int(root), ctypes.c_char_p(b"."),
                      ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd >= 0:
        os.close(fd)
        return "ok"
    return errno.errorcode[ctypes.get_errno()]
out = {"before": raw(), "chose_before": confine.choose(root).name}
no_openat2.deny()
out.update(after=raw(), chose_after=confine.choose(root).name, others=sorted(os.listdir(root)))
print(json.dumps(out))
"""


@pytest.mark.skipif(
    sys.platform != "linux" or os.uname().machine not in no_openat2.AUDIT_ARCH,
    reason="the seccomp switch is for Linux on x86_64/aarch64 (where the suite runs)",
)
def test_the_seccomp_switch_really_takes_openat2_away(tmp_path):
    import json

    (tmp_path / "f").write_bytes(b"")
    p = subprocess.run(
        [sys.executable, "-c", SECCOMP_PROBE, str(tmp_path)],
        capture_output=True,
        timeout=30,
    )
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout)
    # this kernel has openat2; after the filter the very same call is ENOSYS, and the rest works
    assert out == {
        "before": "ok",
        "chose_before": "openat2",
        "after": "ENOSYS",
        "chose_after": "walk",
        "others": ["f"],
    }


@pytest.mark.parametrize("env", [{}, {no_openat2.ENV: "1"}], ids=["openat2", "walk"])
def test_the_server_says_which_resolver_it_runs(tmp_path, monkeypatch, env):
    monkeypatch.delenv(no_openat2.ENV, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    p = subprocess.run(
        [*sftp_wire.SERVER, str(tmp_path)],
        input=struct.pack(">IBI", 5, P.INIT, 3),
        capture_output=True,
        timeout=30,
    )
    assert p.returncode == 0 and p.stdout[4] == P.VERSION, p.stderr
    assert sftp_wire.confined_by(p.stderr) == ("walk" if env else "openat2")


def test_the_switch_is_only_the_exact_value(monkeypatch):
    for value, on in [("1", True), ("0", False), ("", False), ("yes", False)]:
        monkeypatch.setenv(no_openat2.ENV, value)
        assert no_openat2.requested() is on


def test_where_the_walk_cannot_run_either_the_share_is_refused_in_words(tmp_path, monkeypatch):
    monkeypatch.setattr(confine, "walk_possible", lambda: False)
    with pytest.raises(confine.Unsupported) as e:
        confine.check_supported(str(tmp_path))
    assert str(e.value) == (
        "SSHFS mounts need a POSIX system (Linux, macOS, BSD) on the Jupyter server's "
        f"machine, not {sys.platform}"
    )
