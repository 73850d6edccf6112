"""Local files of the user: private dirs, lock files, and the control dir's housekeeping.

Everything happens in temporary dirs of the test; the "masters" are plain unix sockets."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from sshpyk.control_dir import STALE_AFTER, control_dir, prune_control_dir
from sshpyk.errors import SSHPykError
from sshpyk.localfs import private_dir, same_file, try_flock
from sshpyk.localproc import pid_alive


def test_private_dir_is_made_0700(tmp_path):
    d = private_dir(tmp_path / "p")
    assert d.is_dir() and d.stat().st_mode & 0o777 == 0o700


def test_private_dir_takes_back_group_and_other_access(tmp_path):
    d = tmp_path / "open"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o775)  # noqa: S103 - the permissive mode under test
    private_dir(d)
    assert d.stat().st_mode & 0o777 == 0o700


def test_private_dir_refuses_a_symlink_and_a_file(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file").write_text("")
    for name in ("link", "file"):
        with pytest.raises(SSHPykError, match="not a directory owned by you"):
            private_dir(tmp_path / name)


def test_private_dir_without_create_needs_it_there(tmp_path):
    with pytest.raises(FileNotFoundError):
        private_dir(tmp_path / "missing", create=False)


def test_try_flock_gives_the_lock_to_one_holder_at_a_time(tmp_path):
    lock = tmp_path / "x.lock"
    fd = try_flock(lock)
    assert fd is not None and lock.stat().st_mode & 0o777 == 0o600
    try:
        assert try_flock(lock) is None  # another open file: locked out, without waiting
    finally:
        os.close(fd)
    again = try_flock(lock)
    assert again is not None
    os.close(again)


def test_try_flock_never_follows_a_symlink(tmp_path):
    (tmp_path / "victim").write_text("keep")
    (tmp_path / "x.lock").symlink_to(tmp_path / "victim")
    with pytest.raises(OSError):
        try_flock(tmp_path / "x.lock")
    assert (tmp_path / "victim").read_text() == "keep"


def test_same_file_sees_a_lock_file_replaced(tmp_path):
    lock = tmp_path / "x.lock"
    fd = try_flock(lock)
    try:
        assert same_file(fd, lock)
        lock.unlink()
        assert not same_file(fd, lock)
        lock.write_text("")  # a new file of that name
        assert not same_file(fd, lock)
    finally:
        os.close(fd)


def test_pid_alive_tells_a_running_process_from_an_ended_one():
    assert pid_alive(os.getpid())
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not pid_alive(proc.pid)


# ---- the control dir's housekeeping ------------------------------------------------------


@pytest.fixture
def cdir(monkeypatch) -> Path:
    base = Path(tempfile.mkdtemp(prefix="spkl", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    yield control_dir()
    shutil.rmtree(base, ignore_errors=True)


def _leftovers(cdir: Path, stem: str, age: float) -> list[Path]:
    files = [cdir / f"{stem}.log", cdir / f"{stem}.lock"]
    for f in files:
        f.write_text("")
        os.utime(f, (time.time() - age, time.time() - age))
    return files


STEMS = [f"cm-{n:016x}" for n in range(6)]


def test_pruning_removes_only_old_files_of_masters_that_are_gone(cdir):
    old = _leftovers(cdir, STEMS[0], STALE_AFTER + 60)
    fresh = _leftovers(cdir, STEMS[1], 5)
    kept = _leftovers(cdir, STEMS[2], STALE_AFTER + 60)
    other = cdir / "not-a-master.log"
    other.write_text("")
    os.utime(other, (0, 0))
    removed = prune_control_dir(keep=cdir / STEMS[2])
    assert sorted(removed) == sorted(old)
    assert all(p.exists() for p in fresh + kept + [other])


def test_pruning_keeps_a_live_master_and_removes_a_dead_ones_socket(cdir):
    live = _leftovers(cdir, STEMS[3], STALE_AFTER + 60)
    dead = _leftovers(cdir, STEMS[4] + "-2", STALE_AFTER + 60)
    with socket.socket(socket.AF_UNIX) as listening, socket.socket(socket.AF_UNIX) as closed:
        listening.bind(str(cdir / STEMS[3]))
        listening.listen()
        closed.bind(str(cdir / f"{STEMS[4]}-2"))  # bound, nobody listens: a dead master
        removed = prune_control_dir()
        assert set(removed) == {*dead, cdir / f"{STEMS[4]}-2"}
        assert all(p.exists() for p in live) and (cdir / STEMS[3]).is_socket()


def test_pruning_leaves_a_master_being_started(cdir):
    files = _leftovers(cdir, STEMS[5], STALE_AFTER + 60)
    fd = try_flock(files[1])  # the start lock, held
    try:
        assert prune_control_dir() == []
    finally:
        os.close(fd)
    assert set(prune_control_dir()) == set(files)
