"""The control dir does not fill up: a master's ``.log`` and ``.lock`` go once it is gone.

Real masters to the harness's test hosts, in a control dir of the test's own (through
``$XDG_RUNTIME_DIR``), so the masters of other tests and processes are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from sshpyk.control_dir import STALE_AFTER, control_dir, prune_control_dir
from sshpyk.errors import SSHConnectError
from sshpyk.transport import Master, Target


@pytest.fixture
def cdir(monkeypatch) -> Path:
    """A private control dir for this test (short: its sockets must fit sun_path)."""
    base = Path(tempfile.mkdtemp(prefix="spkcd", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    d = control_dir()
    assert d == base / "sshpyk"
    yield d
    # end whatever master a test left, by the pid ssh itself reports
    for sock in d.glob("cm-*"):
        if sock.is_socket():
            subprocess.run(
                ["ssh", "-F", "/dev/null", "-S", str(sock), "-O", "exit", "x"],
                capture_output=True,
                timeout=10,
            )
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def configs(test_hosts, tmp_path) -> list[str]:
    """Two copies of the test ssh config: another config file is another master."""
    out = []
    for name in ("a", "b"):
        p = tmp_path / f"ssh_config_{name}"
        shutil.copy(test_hosts.ssh_config, p)
        p.chmod(0o600)
        out.append(str(p))
    return out


def files_of(m: Master) -> set[str]:
    cp = m.control_path
    return {cp.name, cp.with_suffix(".log").name, cp.with_suffix(".lock").name}


def backdate(d: Path, seconds: float) -> None:
    """What the passing of time does to the files of masters that are gone."""
    then = time.time() - seconds
    for p in d.iterdir():
        # a master still ending removes its own files meanwhile: nothing left to age
        with contextlib.suppress(FileNotFoundError):
            if not p.is_socket():
                os.utime(p, (then, then))


async def started(alias: str, config: str) -> Master:
    m = Master(Target(alias, "ssh", config))
    await m.ensure(30)
    rc, out, err = await m.run("echo ok", timeout=20)
    assert (rc, out.strip()) == (0, "ok"), err
    return m


async def test_gone_masters_leave_no_logs_or_locks(cdir, configs):
    a, b = configs
    masters = [await started(alias, c) for c in (a, b) for alias in ("remote", "bastion")]
    assert len({m.control_path for m in masters}) == 4
    live, exited, killed, persisted = masters
    for m in masters:
        assert files_of(m) <= set(os.listdir(cdir)), os.listdir(cdir)

    # ended by us: its files go at once
    await exited.exit()
    assert not files_of(exited) & set(os.listdir(cdir)), os.listdir(cdir)

    # died (kill -9): the socket stays, nobody listens on it any more
    os.kill(killed.identity[0], signal.SIGKILL)
    # ended on its own (ControlPersist): socket gone, log and lock stay for now
    r = subprocess.run(
        ["ssh", "-F", b, "-S", str(persisted.control_path), "-O", "exit", "bastion"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 5
    while persisted.control_path.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)

    # a gone master's log is kept for a while (a failed start's reason stays readable)
    assert prune_control_dir() == []
    assert files_of(persisted) - {persisted.control_path.name} <= set(os.listdir(cdir))

    # long after, the next master started by any sshpyk process forgets them
    backdate(cdir, STALE_AFTER + 60)
    newcomer = await started("remote", b)
    left = set(os.listdir(cdir))
    assert left == files_of(live) | files_of(newcomer), left

    # the live master (idle, with old files) was left alone and still serves
    pid = live.identity[0]
    rc, out, _ = await live.run("echo still", timeout=20)
    assert (rc, out.strip()) == (0, "still")
    assert await live.is_alive() and live.identity[0] == pid
    for m in (live, newcomer):
        await m.exit()
    assert os.listdir(cdir) == []


async def test_many_masters_come_and_go_and_only_the_live_ones_stay(cdir, configs):
    a, b = configs
    for _ in range(3):
        gone = [await started(alias, c) for c in (a, b) for alias in ("remote", "bastion")]
        for m in gone[::2]:
            await m.exit()
        for m in gone[1::2]:  # ends the way ControlPersist does: the files stay behind
            subprocess.run(
                [*m.target.base_argv(), "-S", str(m.control_path), "-O", "exit", "x"],
                capture_output=True,
                timeout=10,
            )
        backdate(cdir, STALE_AFTER + 1)
    keeper = await started("internal", a)
    assert set(os.listdir(cdir)) == files_of(keeper), os.listdir(cdir)
    await keeper.exit()


async def test_a_failed_start_still_reports_ssh_reason(cdir, test_hosts, tmp_path):
    # a key the hosts do not know: sshd refuses it, ssh says why on stderr (into the log)
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    text = test_hosts.ssh_config.read_text().replace(str(test_hosts.client_key), str(key))
    bad = tmp_path / "ssh_config_bad"
    bad.write_text(text)
    bad.chmod(0o600)
    m = Master(Target("remote", "ssh", str(bad)))
    # stale files of a long-gone master beside it, so the failed start also prunes
    old = cdir / "cm-0123456789abcdef.log"
    old.write_text("old\n")
    backdate(cdir, STALE_AFTER + 60)

    with pytest.raises(SSHConnectError) as info:
        await m.ensure(30)
    assert info.value.kind == "auth_failed", info.value
    assert "Permission denied" in info.value.detail
    # the log with ssh's reason is still there to read; only the stale one went
    log = m.control_path.with_suffix(".log")
    assert "Permission denied" in log.read_text()
    assert prune_control_dir() == [] and log.exists()

    # and a second failure reads the reason again (the log is made anew)
    with pytest.raises(SSHConnectError, match="authentication"):
        await m.ensure(30)
    backdate(cdir, STALE_AFTER + 60)
    removed = prune_control_dir()
    assert log in removed and not log.exists()


async def test_files_of_a_master_being_started_are_never_pruned(cdir, test_hosts):
    m = Master(Target("remote", "ssh", str(test_hosts.ssh_config)))
    lock, log = m.control_path.with_suffix(".lock"), m.control_path.with_suffix(".log")
    log.write_text("ssh is writing here\n")
    lock.touch()
    backdate(cdir, STALE_AFTER + 60)
    # another process is starting this master: it holds the start lock
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert prune_control_dir(older_than=0) == []
        assert log.exists() and lock.exists()
    finally:
        os.close(fd)
    assert set(prune_control_dir(older_than=0)) == {lock, log}


async def test_a_waiter_locks_the_new_lock_file_when_the_old_one_was_pruned(cdir, test_hosts):
    """The lock file may be removed while a process waits on it; that process must then lock
    the file now at that path (the one every newcomer locks), not the removed one."""
    m = Master(Target("remote", "ssh", str(test_hosts.ssh_config)))
    lock = m.control_path.with_suffix(".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    waiter = asyncio.ensure_future(m.ensure(30))
    await asyncio.sleep(0.3)
    assert not waiter.done()  # waits for our lock
    lock.unlink()  # what prune_control_dir does, under the lock
    os.close(fd)
    await asyncio.wait_for(waiter, 30)
    assert await m.is_alive()
    assert lock.exists()  # made anew by the waiter (before: it locked the removed file)
    # the master holds no lock after its start: a newcomer's lock on the path succeeds
    fd2 = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd2)
    await m.exit()
