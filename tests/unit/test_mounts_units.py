"""SSHFS mounts without a host: options, read-only detection, the local server's command,
the remote helper's errors in words, and mounts shared by kernels through the runtime."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from sshpyk import mounts as M
from sshpyk.mounts import Mount, MountError, Mounts
from sshpyk.runtime import default_runtime
from sshpyk.states import MountState
from sshpyk.transport import Target


class _Master:
    """Only what a Mount reads of its master before it mounts."""

    def __init__(self, alias: str = "h"):
        self.target = Target(alias)


def test_options_drop_what_sshpyk_does_itself():
    assert M._options("reconnect,ro,cache=yes") == "ro,cache=yes"
    assert M._options("reconnect=1,,allow_other") == "allow_other"
    assert M._options(None) == "" and M._options("") == ""


def test_read_only_is_the_ro_option_alone():
    assert M._read_only("ro") and M._read_only("cache=yes,ro")
    assert not M._read_only("rw") and not M._read_only("ro=1") and not M._read_only("")


def test_a_mount_starts_unmounted_with_its_real_paths(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    spec = {"local_path": str(tmp_path / "link"), "remote_path": "~/m", "sshfs_options": "ro"}
    m = Mount(_Master(), "/opt/py", None, spec)
    assert m.local_path == str(tmp_path / "real") and m.read_only and not m.optional
    assert m.state is MountState.UNMOUNTED
    status = json.loads(json.dumps(m.status()))
    assert status["state"] == "unmounted" and status["mounts"] == 0


def test_the_local_server_is_read_only_and_dies_with_this_process(tmp_path):
    ro = Mount(
        _Master(),
        "/p",
        None,
        {"local_path": str(tmp_path), "remote_path": "~/m", "sshfs_options": "ro"},
    )
    argv = ro.server_argv()
    assert argv[1:3] == ["-m", "sshpyk.sftp_server"] and "--read-only" in argv
    assert argv[argv.index("--parent") + 1] == str(os.getpid())
    assert argv[-2:] == ["--", str(tmp_path)]
    rw = Mount(_Master(), "/p", None, {"local_path": str(tmp_path), "remote_path": "~/m"})
    assert "--read-only" not in rw.server_argv()


def test_the_helpers_params_travel_in_its_command(tmp_path):
    m = Mount(
        _Master(),
        "/opt/py",
        "/usr/bin/sshfs",
        {"local_path": str(tmp_path), "remote_path": "~/m", "sshfs_options": "ro"},
        lease_timeout=30,
    )
    command = m._command()
    assert command.startswith("exec /bin/sh -c ") and "\n" not in command
    assert "sshpyk-mount" in command  # its name stays readable in ps


@pytest.mark.parametrize(
    ("reply", "stderr", "kind", "words"),
    [
        (None, "ssh: connection closed", "mount_failed", "failed: ssh: connection closed"),
        (None, "", "mount_failed", "no answer"),
        ({"error": "prefix_missing"}, "", "prefix_missing", "'/opt/py' does not exist on 'h'"),
        ({"error": "python_missing"}, "", "python_missing", "/opt/py/bin/python (or python3) on"),
        ({"error": "sshfs_missing", "message": "no sshfs"}, "", "sshfs_missing", "install sshfs"),
        ({"error": "busy", "message": "in use"}, "", "busy", "cannot mount"),
    ],
)
def test_the_remote_helpers_errors_in_words(tmp_path, reply, stderr, kind, words):
    m = Mount(_Master(), "/opt/py", None, {"local_path": str(tmp_path), "remote_path": "~/m"})
    err = m._error(reply, stderr)
    assert isinstance(err, MountError) and err.kind == kind and words in str(err)


@pytest.fixture
def fake_mounting(monkeypatch):
    """Mount.ensure/stop that only record: sharing is what is tested."""
    started, stopped = [], []

    async def ensure(self):
        started.append(self)
        self._set(MountState.MOUNTED)

    async def stop(self):
        stopped.append(self)
        self._set(MountState.UNMOUNTED)

    monkeypatch.setattr(Mount, "ensure", ensure)
    monkeypatch.setattr(Mount, "stop", stop)
    return started, stopped


def _mounts(tmp_path, shared, local="a", alias="h", **spec):
    (tmp_path / local).mkdir(exist_ok=True)
    master = _Master(alias)
    s = {"local_path": str(tmp_path / local), "remote_path": "~/m", **spec}
    return Mounts(master, "/opt/py", None, [s], shared=shared)


def test_kernels_share_one_mount_which_ends_with_the_last(tmp_path, fake_mounting):
    _, stopped = fake_mounting
    shared: dict = {}
    first, second = _mounts(tmp_path, shared), _mounts(tmp_path, shared)
    asyncio.run(first.start(timeout=5))
    asyncio.run(second.start(timeout=5))
    assert second.items[0] is first.items[0] and first.items[0].users == 2
    assert list(shared) == [(Target("h").key, "~/m")]
    asyncio.run(first.stop())
    assert stopped == []
    asyncio.run(second.stop())
    assert stopped == [first.items[0]] and first.items[0].users == 0


def test_another_local_dir_on_a_busy_mount_point_is_refused(tmp_path, fake_mounting):
    shared: dict = {}
    asyncio.run(_mounts(tmp_path, shared).start(timeout=5))
    other = _mounts(tmp_path, shared, local="b")
    with pytest.raises(MountError) as e:
        asyncio.run(other.start(timeout=5))
    assert e.value.kind == "mount_point_busy"
    assert other.items[0].state is MountState.FAILED
    optional = _mounts(tmp_path, shared, local="b", optional=True)
    asyncio.run(optional.start(timeout=5))  # an optional mount only logs it
    assert optional.up and optional.items[0].state is MountState.FAILED


def test_other_hosts_and_other_runtimes_do_not_share(tmp_path, fake_mounting):
    started, _ = fake_mounting
    shared: dict = {}
    a, b, c = _mounts(tmp_path, shared), _mounts(tmp_path, shared, alias="g"), _mounts(tmp_path, {})
    for m in (a, b, c):
        asyncio.run(m.start(timeout=5))
    assert len({id(m.items[0]) for m in (a, b, c)}) == 3 and len(started) == 3


def test_mounts_share_through_the_default_runtime_without_a_server(tmp_path):
    m = Mounts(_Master(), "/opt/py", None, [])
    assert m.shared is default_runtime().mounts
    assert not hasattr(M, "_SHARED")
