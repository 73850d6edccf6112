"""The ssh command lines a ``Master`` builds, and where its connections are kept.

No ssh runs: the master's process spawner is replaced by one that records argv and answers
like ssh would, and ``ssh -G`` by a canned answer."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from sshpyk import sessions, transport
from sshpyk.control_dir import MAX_CONTROL_DIR, control_dir
from sshpyk.model import SSHKernelConfig
from sshpyk.runtime import default_runtime
from sshpyk.transport import SHARDS, Master, Target


class _Done:
    """What the spawner hands back: a process that exited at once with ``rc``."""

    def __init__(self, rc: int = 0, err: bytes = b""):
        self.returncode, self._err = rc, err

    async def communicate(self, data=None):
        return b"", self._err

    async def wait(self):
        return self.returncode


@pytest.fixture
def cdir(monkeypatch):
    """A short private control dir (its sockets must fit a unix socket path)."""
    base = Path(tempfile.mkdtemp(prefix="spku", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    yield base / "sshpyk"
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def recorded(cdir, monkeypatch):
    """A master of a config file whose spawned argv are recorded instead of run."""
    master = Master(Target("h1", "/usr/bin/ssh", "/cfg/ssh_config"))
    calls: list[list[str]] = []

    async def spawn(argv, **kw):
        calls.append(list(argv))
        return _Done()

    monkeypatch.setattr(master, "_spawn", spawn)
    return master, calls


def _options(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]


def test_mux_clients_use_our_socket_only_in_batch_mode_and_never_connect_themselves(recorded):
    master, calls = recorded
    asyncio.run(master.open_session("echo hi"))
    (argv,) = calls
    assert argv[:3] == ["/usr/bin/ssh", "-F", "/cfg/ssh_config"]
    opts = _options(argv)
    assert f"ControlPath={master.control_path}" in opts
    assert "ControlMaster=no" in opts and "BatchMode=yes" in opts
    # should the master be gone, a mux client must fail instead of connecting on its own
    assert "ProxyCommand=false" in opts
    assert argv[-4:] == ["-T", "--", "h1", "echo hi"]


def test_forward_and_cancel_are_one_control_command_with_every_spec(recorded):
    master, calls = recorded
    specs = ["127.0.0.1:5001:127.0.0.1:6001", "127.0.0.1:5002:/run/k-2"]
    ok, _ = asyncio.run(master.forward(specs))
    asyncio.run(master.cancel(specs))
    assert ok
    forward, cancel = calls
    for argv, op in ((forward, "forward"), (cancel, "cancel")):
        at = argv.index("-O")
        assert argv[at + 1] == op
        assert argv[at + 2 :] == ["-L", specs[0], "-L", specs[1], "--", "h1"]


def test_a_refused_forward_reports_sshs_words(cdir, monkeypatch):
    master = Master(Target("h1"))

    async def spawn(argv, **kw):
        return _Done(255, b"mux_client_forward: forwarding request failed\n")

    monkeypatch.setattr(master, "_spawn", spawn)
    ok, err = asyncio.run(master.forward(["127.0.0.1:1:127.0.0.1:2"]))
    assert not ok and "forwarding request failed" in err


def _start_argv(master, calls, monkeypatch, ssh_g: str) -> list[str]:
    async def run_local(argv, timeout):
        calls.append(["run_local", *argv])
        return 0, ssh_g, ""

    monkeypatch.setattr(transport, "run_local", run_local)
    asyncio.run(master._start(5))
    return calls[-1]


def test_the_master_persists_keeps_alive_and_goes_to_the_background(recorded, monkeypatch):
    master, calls = recorded
    argv = _start_argv(master, calls, monkeypatch, "hostname h1.example\nport 22\n")
    assert calls[0][1:] == ["/usr/bin/ssh", "-F", "/cfg/ssh_config", "-G", "--", "h1"]
    opts = _options(argv)
    assert "ControlMaster=yes" in opts and f"ControlPath={master.control_path}" in opts
    assert f"ControlPersist={transport.CONTROL_PERSIST}" in opts
    assert f"ServerAliveInterval={transport.SERVER_ALIVE_INTERVAL}" in opts
    assert f"ServerAliveCountMax={transport.SERVER_ALIVE_COUNT}" in opts
    assert "BatchMode=yes" in opts and "ExitOnForwardFailure=no" in opts
    assert argv[-4:] == ["-N", "-f", "--", "h1"]
    assert master.generation == 1
    # a host reached directly gets the tuned TCP socket of tcp_connect, passed as an fd
    proxy = [o for o in opts if o.startswith("ProxyCommand=")]
    assert len(proxy) == 1 and str(transport.TCP_CONNECT) in proxy[0]
    assert "%h %p 30" in proxy[0]  # ssh's default ConnectTimeout when none is set
    assert "ProxyUseFdpass=yes" in opts


def test_a_host_behind_a_jump_keeps_its_own_proxy(recorded, monkeypatch):
    master, calls = recorded
    argv = _start_argv(master, calls, monkeypatch, "hostname h1\nproxyjump bastion\n")
    assert not [o for o in _options(argv) if o.startswith("Proxy")]


def test_a_failed_start_is_classified_from_sshs_log(recorded, monkeypatch):
    master, _ = recorded

    async def spawn(argv, **kw):
        os.write(kw["stderr"], b"Permission denied (publickey).\n")  # ssh's log file
        return _Done(255)

    monkeypatch.setattr(master, "_spawn", spawn)

    async def run_local(argv, timeout):
        return 255, "", "bad"

    monkeypatch.setattr(transport, "run_local", run_local)
    with pytest.raises(transport.SSHPykError) as e:
        asyncio.run(master._start(5))
    assert e.value.kind == "auth_failed"


def test_target_from_config_is_the_one_place_for_the_defaults():
    plain = Target.from_config({"ssh_host_alias": "h", "ssh": None, "ssh_config": None})
    assert plain == Target("h", "ssh", None) and plain.base_argv() == ["ssh"]
    assert Target.from_config({"ssh_host_alias": "h", "ssh_config": ""}).config is None
    cfg = SSHKernelConfig(
        ssh_host_alias="h", remote_python_prefix="/p", remote_kernel_name="k", ssh="/bin/ssh"
    )
    assert Target.from_config(cfg) == Target("h", "/bin/ssh", None)
    with_file = Target.from_config({"ssh_host_alias": "h", "ssh_config": "/c"})
    assert with_file.base_argv() == ["ssh", "-F", "/c"]
    # the key names (ssh, config, alias): another config is another master
    assert len(plain.key) == 16 and plain.key != with_file.key
    assert plain.key == Target("h").key


def test_control_paths_fit_a_unix_socket_path(cdir):
    assert control_dir() == cdir
    assert cdir.stat().st_mode & 0o777 == 0o700
    last = Master(Target("h" * 200, "ssh", "/c" * 100), shard=SHARDS - 1)
    # ssh appends 17 characters to the path while it creates the socket; macOS allows 104
    assert len(str(last.control_path)) + 17 < 104
    assert last.control_path.name == f"cm-{last.target.key}-{SHARDS - 1}"
    assert Master(Target("h")).control_path.name == f"cm-{Target('h').key}"


def test_a_long_runtime_dir_is_not_used_for_sockets(monkeypatch, tmp_path):
    long = tmp_path / ("x" * 60)
    long.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(long))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = control_dir()
    try:
        assert len(str(first)) <= MAX_CONTROL_DIR and not str(first).startswith(str(long))
        assert control_dir() == first  # remembered: every process of the user shares it
        assert (tmp_path / "cache" / "sshpyk" / "control-dir").read_text().strip() == str(first)
    finally:
        shutil.rmtree(first, ignore_errors=True)


def test_masters_live_in_a_pool_and_shards_stay_in_theirs(cdir):
    pool: dict = {}
    t = Target("h")
    m = Master.for_target(t, pool=pool)
    assert Master.for_target(t, pool=pool) is m
    assert Master.for_target(t, pool={}) is not m  # another server's runtime, another object
    nxt = m.next_shard()
    assert nxt is not None and nxt.shard == 1 and nxt.pool is pool
    assert Master.for_target(t, 1, pool=pool) is nxt
    assert Master.for_target(t, SHARDS - 1, pool=pool).next_shard() is None


def test_the_default_pool_is_the_default_runtimes(cdir):
    m = Master.for_target(Target("default-pool-host"))
    assert default_runtime().masters[f"{m.target.key}-0"] is m
    assert not hasattr(Master, "_instances")


def test_session_refusals_are_recognised():
    assert sessions.session_refused("channel 3: open failed: administratively prohibited")
    assert sessions.session_refused(
        "mux_client_request_session: session request failed: open refused"
    )
    assert not sessions.session_refused("Connection closed by UNKNOWN port 65535")
