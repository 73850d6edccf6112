"""Lifecycle hardening (issue 12): re-attach claims (M3), masters shared between processes
(M4), hosts that forbid forwarding (M10), orphan detection across a same-pid restart (L3),
failed launches that leave nothing (L4), a private control dir (L6), `demo --stop` that
never kills a stranger (L8), side-effect-free GETs and atomic registry writes.

All against the real test hosts; ``noforward`` is the remote's sshd on a port where it
forbids TCP and stream-local forwarding (see tests/harness/topology.py)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pwd
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import zmq
import zmq.asyncio
from helpers import (
    kernel_procs,
    local_servers,
    local_ssh_procs,
    run_code,
    start,
    wait_state,
    wait_until,
)
from tornado.httpclient import HTTPClientError

from harness import is_root
from sshpyk import registry
from sshpyk.checks import Checker
from sshpyk.errors import SSHPykError
from sshpyk.states import CheckStatus

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]


def _env(**over) -> dict:
    env = {**os.environ, **over}
    # subprocesses import the sshpyk under test (a checkout may shadow the installed one)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return {k: v for k, v in env.items() if v is not None}


def _py(code: str, *args: str, env=None, timeout=60, prefix=()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, PY, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or _env(),
    )


async def channel_answers(port: int) -> bool:
    """Whether the kernel's ZeroMQ socket behind local ``port`` greets a new connection
    (ZMTP's first byte is 0xFF); a refused forward ends it at once."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        return await asyncio.wait_for(reader.read(1), 10) == b"\xff"
    finally:
        writer.close()


async def heartbeat_echoes(port: int, timeout: float = 10) -> bool:
    """Whether a ping sent to the heartbeat channel behind local ``port`` comes back."""
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    try:
        sock.connect(f"tcp://127.0.0.1:{port}")
        await sock.send(b"ping-sshpyk")
        return await sock.poll(timeout * 1000) != 0 and await sock.recv() == b"ping-sshpyk"
    finally:
        sock.close()
        ctx.term()


@pytest.fixture
def root_only():
    """Private mount/pid namespaces, tmpfs and chown need root (as the netns hosts do)."""
    if not is_root():
        pytest.skip("needs root (namespaces, tmpfs, chown)")


def monitor_sessions(config: Path, alias: str) -> list[str]:
    """Local ssh mux clients running a remote command (monitor or launcher sessions)."""
    return [p for p in local_ssh_procs(config) if " -T -- " in p and f" -- {alias} " in p]


# ---- M10 + L4: a host that forbids port forwarding ------------------------------------------


# forward only: the refusal of forwards (test_relay runs a relay kernel on that host)
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
async def test_forwarding_refused_fails_the_launch_and_leaves_nothing(
    test_hosts, specs, managers, transport
):
    km = managers(specs(f"ssh-nofwd-{transport}", ssh_host_alias="noforward", transport=transport))
    t0 = time.monotonic()
    with pytest.raises(SSHPykError) as e:
        await km.start_kernel()
    assert e.value.kind == "forwarding_refused", e.value
    option = "AllowStreamLocalForwarding" if transport == "ipc" else "AllowTcpForwarding"
    assert option in str(e.value) and "noforward" in str(e.value)
    assert time.monotonic() - t0 < 15  # said at once, not after launch_timeout
    prov = km.provisioner
    assert prov.state == "dead" and prov.forwards == [] and prov.remote is None
    # no monitor session (L4): the launcher got no "ack" and ended its kernel
    assert await wait_until(
        lambda: _async(not monitor_sessions(test_hosts.ssh_config, "noforward")), 5
    ), monitor_sessions(test_hosts.ssh_config, "noforward")
    assert await wait_until(lambda: _async(kernel_procs(test_hosts) == []), 10), kernel_procs(
        test_hosts
    )
    assert registry.load(str(km.kernel_id)) is None
    _nothing_left_of_the_launch(test_hosts, km)


def _nothing_left_of_the_launch(th, km) -> None:
    """An abandoned launch (no "ack") leaves nothing in ~/.sshpyk/run: no run dir and no
    ``.exit`` file, which only a monitor attached later would read."""
    kid = str(km.kernel_id).replace("-", "")[:8]
    deadline = time.monotonic() + 10
    while True:
        left = th.ssh("noforward", f"ls -A ~/.sshpyk/run | grep ^{kid}- || true").stdout.strip()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not left, f"an abandoned launch left {left!r} on the host"


async def _async(value):
    return value


# forward only: the launch fails at its forwards (a relay launch there succeeds)
async def test_a_launch_that_fails_after_ready_unmounts(netns_hosts, specs, managers, tmp_path):
    """L4: the mount is up and the remote kernel said "ready" when forwarding fails."""
    share = tmp_path / "share"
    share.mkdir()
    point = f"mnt-l4f-{os.getpid()}"
    km = managers(
        specs(
            "ssh-nofwd-mount",
            ssh_host_alias="noforward",
            mount_local_on_remote=[{"local_path": str(share), "remote_path": f"~/{point}"}],
        )
    )
    try:
        with pytest.raises(SSHPykError) as e:
            await km.start_kernel()
        assert e.value.kind == "forwarding_refused", e.value
        prov = km.provisioner
        assert not prov.mounts.up
        assert not local_servers(share)
        mounted = netns_hosts.ssh("remote", "cat /proc/self/mountinfo").stdout
        assert point not in mounted
        assert await wait_until(
            lambda: _async(not monitor_sessions(netns_hosts.ssh_config, "noforward")), 5
        )
        assert await wait_until(lambda: _async(kernel_procs(netns_hosts) == []), 10)
    finally:
        _nothing_left_of_the_launch(netns_hosts, km)
        netns_hosts.ssh("remote", f"fusermount3 -u -z ~/{point} 2>/dev/null; rm -rf ~/{point}")


async def test_port_forwarding_check_names_the_refusal(test_hosts):
    checker = Checker(timeout=15)
    for transport, option in (("tcp", "AllowTcpForwarding"), ("ipc", "AllowStreamLocalForwarding")):
        base = {
            "ssh_config": str(test_hosts.ssh_config),
            "remote_python_prefix": test_hosts.remote_python_prefix,
            "remote_kernel_name": "python3",
            "kernel_name": f"k-{transport}",
            "transport": transport,
        }
        good = await checker.check({**base, "ssh_host_alias": "remote"})
        bad = await checker.check({**base, "ssh_host_alias": "noforward"})
        (g,) = [c for c in good if c.id == "port_forwarding"]
        (b,) = [c for c in bad if c.id == "port_forwarding"]
        assert g.status == CheckStatus.OK, g
        assert b.status == CheckStatus.FAIL and option in b.hint and "noforward" in b.hint, b
        # everything else about that host is fine: only forwarding is named
        assert [c.id for c in bad if c.status == CheckStatus.FAIL] == ["port_forwarding"]


def test_cli_check_reports_port_forwarding(test_hosts, specs):
    specs("ssh-cli-nofwd", ssh_host_alias="noforward")
    exe = str(Path(PY).parent / "sshpyk")
    r = subprocess.run(
        [exe, "check", "--kernel-name", "ssh-cli-nofwd", "--json"],
        capture_output=True,
        text=True,
        timeout=90,
        env=_env(),
    )
    assert r.returncode == 1, r.stderr
    checks = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["port_forwarding"]["status"] == "fail"
    assert "Forwarding no" in checks["port_forwarding"]["hint"]
    r = subprocess.run(
        [exe, "check", "--kernel-name", "ssh-cli-nofwd"],
        capture_output=True,
        text=True,
        timeout=90,
        env=_env(),
    )
    assert "Port forwarding" in r.stdout and "Forwarding no" in r.stdout, r.stdout


# ---- L4: cleanup survives a registry that cannot be written ---------------------------------


async def test_cleanup_stops_mounts_and_session_when_the_record_cannot_be_updated(
    netns_hosts, specs, managers, channels, tmp_path
):
    share = tmp_path / "share"
    share.mkdir()
    (share / "f.txt").write_text("x")
    point = f"mnt-l4-{os.getpid()}"
    km = managers(
        specs(
            "ssh-l4",
            mount_local_on_remote=[{"local_path": str(share), "remote_path": f"~/{point}"}],
        )
    )
    try:
        kc = await start(km)
        prov = km.provisioner
        assert prov.mounts.up
        kc.stop_channels()
        # the record is now something no write can replace: remove() and abandon() fail
        path = registry.directory() / f"{km.kernel_id}.json"
        path.unlink()
        path.mkdir()
        await km.shutdown_kernel(now=True)
        assert not prov.mounts.up
        assert await wait_until(
            lambda: _async(not monitor_sessions(netns_hosts.ssh_config, "remote")), 5
        )
        assert not local_servers(share)
        assert await wait_until(lambda: _async(kernel_procs(netns_hosts) == []), 10), kernel_procs(
            netns_hosts
        )
    finally:
        shutil.rmtree(registry.directory() / f"{km.kernel_id}.json", ignore_errors=True)
        netns_hosts.ssh("remote", f"fusermount3 -u -z ~/{point} 2>/dev/null; rm -rf ~/{point}")


async def test_unconfirmed_shutdown_stops_mounts_when_the_record_cannot_be_kept(
    netns_hosts, specs, managers, channels, faults, tmp_path
):
    """The host is unreachable at shutdown, so the record should stay as an orphan
    (registry.abandon), and that write fails: the mount and the session still go."""
    share = tmp_path / "share"
    share.mkdir()
    point = f"mnt-l4u-{os.getpid()}"
    km = managers(
        specs(
            "ssh-l4u",
            launch_timeout=5,
            lease_timeout=30,
            mount_local_on_remote=[{"local_path": str(share), "remote_path": f"~/{point}"}],
        )
    )
    path = pgid = None
    try:
        kc = await start(km)
        kc.stop_channels()
        prov = km.provisioner
        pgid = prov.remote["pgid"]
        assert prov.mounts.up and local_servers(share)
        path = registry.directory() / f"{km.kernel_id}.json"
        path.unlink()
        path.mkdir()  # abandon() cannot load nor rewrite it
        faults.cut("remote")
        await asyncio.wait_for(km.shutdown_kernel(now=True), 60)
        # it took the abandon path
        assert prov.kernel._exit_unconfirmed or not prov.kernel._exited.is_set()
        assert not prov.mounts.up
        assert await wait_until(lambda: _async(not local_servers(share)), 10)
        assert not monitor_sessions(netns_hosts.ssh_config, "remote")
    finally:
        faults.restore("remote")
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
        if pgid:  # the kernel outlives an unconfirmed shutdown (until its lease ends)
            netns_hosts.ssh("remote", f"kill -9 -- -{int(pgid)} 2>/dev/null; true")
        netns_hosts.ssh("remote", f"fusermount3 -u -z ~/{point} 2>/dev/null; rm -rf ~/{point}")


# ---- registry: atomic writes, same-pid restarts (L3) ----------------------------------------


def _record(kernel_id="k-1", **over) -> registry.Record:
    return registry.Record(
        **{
            "kernel_id": kernel_id,
            "kernelspec": "spec",
            "display_name": "Spec",
            "config": {"ssh_host_alias": "remote"},
            "remote": {"pid": 1, "rundir": "/nonexistent/k-1"},
            "key": "secret",
            "signature_scheme": "hmac-sha256",
            "started_at": time.time(),
            **over,
        }
    )


def test_a_failed_save_leaves_no_temporary_file(root_only, tmp_path, monkeypatch):
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    # a real full disk: a 64 KiB tmpfs, filled up
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(runtime)], check=True)
    try:
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
        registry.save(_record())  # fits
        # a value json cannot write
        with pytest.raises(TypeError):
            registry.save(_record(kernel_id="k-2", remote={"bad": object()}))
        fd = os.open(runtime / "filler", os.O_WRONLY | os.O_CREAT)
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        with pytest.raises(OSError):
            registry.save(_record(remote={"blob": "x" * 200_000}))
        left = sorted(p.name for p in registry.directory().iterdir())
        assert left == ["k-1.json"], left
        assert registry.load("k-1").key == "secret"  # the old record is intact
    finally:
        subprocess.run(["umount", "-l", str(runtime)], check=False)


def test_records_of_a_previous_server_with_the_same_pid_are_orphans(root_only, tmp_path):
    """A container restart gives the new Jupyter server the old one's pid: two processes,
    each pid 1 of its own pid namespace, play the old and the new server."""
    env = _env(JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    pid1 = ("unshare", "--pid", "--fork", "--mount-proc")
    write = _py(
        """
        import os, time
        from sshpyk import registry
        assert os.getpid() == 1
        registry.save(registry.Record(kernel_id="old", kernelspec="s", display_name="S",
            config={"ssh_host_alias": "remote"}, remote={}, key="k",
            signature_scheme="hmac-sha256", started_at=time.time()))
        print(registry.load("old").orphan)
        """,
        env=env,
        prefix=pid1,
    )
    assert write.returncode == 0, write.stderr
    assert write.stdout.split() == ["False"]  # its own server's kernel
    read = _py(
        """
        import os
        from sshpyk import registry
        assert os.getpid() == 1
        rec = registry.load("old")
        print(rec.server_pid, rec.orphan)
        """,
        env=env,
        prefix=pid1,
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == ["1", "True"]


# ---- L6: a control dir no other local user can take ------------------------------------------


def test_control_dir_is_private_even_when_the_fixed_name_is_squatted(
    root_only, test_hosts, tmp_path
):
    nobody = pwd.getpwnam("nobody")
    squat = tmp_path / "squat"
    squat.mkdir()
    os.chown(squat, nobody.pw_uid, nobody.pw_gid)
    squat.chmod(0o755)
    fixed = Path(f"/tmp/sshpyk-{os.getuid()}")
    fixed.mkdir(mode=0o700, exist_ok=True)
    home = tmp_path / "home"
    home.mkdir()
    # Another user made /tmp/sshpyk-<uid> first.  Shown only inside a private mount
    # namespace (a bind mount), so no other sshpyk process on this machine sees it.
    script = f'mount --bind {squat} {fixed} && exec "$@"'
    prefix = ("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh")
    env = _env(XDG_RUNTIME_DIR=None, TMPDIR=None, XDG_CACHE_HOME=str(home / ".cache"))
    code = f"""
        import asyncio, os, stat
        from pathlib import Path
        from sshpyk.control_dir import control_dir
        from sshpyk.transport import Master, Target
        assert os.stat({str(fixed)!r}).st_uid == {nobody.pw_uid}
        d = control_dir()
        st = os.lstat(d)
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid(), d
        assert stat.S_IMODE(st.st_mode) == 0o700 and d != Path({str(fixed)!r}), d
        assert control_dir() == d  # remembered: every process shares its masters
        async def go():
            m = Master(Target("remote", "ssh", {str(test_hosts.ssh_config)!r}), 7)
            assert len(str(m.control_path)) <= 100, m.control_path
            await m.ensure(20)
            rc, out, _ = await m.run("echo ok", timeout=20)
            await m.exit()
            return out.strip()
        print(d, asyncio.run(go()))
        """
    r = _py(code, env=env, prefix=prefix)
    assert r.returncode == 0, r.stderr
    made, answer = r.stdout.split()
    assert answer == "ok"
    try:
        # that dir is removed and another user takes its name: a new one is made
        shutil.rmtree(made)
        os.mkdir(made, 0o755)
        os.chown(made, nobody.pw_uid, nobody.pw_gid)
        r2 = _py(code, env=env, prefix=prefix)
        assert r2.returncode == 0, r2.stderr
        assert r2.stdout.split()[0] != made
        shutil.rmtree(r2.stdout.split()[0], ignore_errors=True)
    finally:
        shutil.rmtree(made, ignore_errors=True)


# ---- L8: demo --stop never kills a process that reused the sshd's pid -----------------------


def test_demo_stop_spares_a_process_that_reused_the_recorded_pid(root_only, tmp_path):
    root = tmp_path / "demo"
    root.mkdir(mode=0o700)
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        state = {
            "alias": "sshpyk-demo",
            "port": 2,
            "sshd_pid": stranger.pid,
            "remote_python_prefix": sys.prefix,
        }
        (root / "sandbox.json").write_text(json.dumps(state))
        # without /proc (as on macOS): a private mount namespace with /proc covered
        hide = 'mount -t tmpfs none /proc && exec "$@"'
        prefix = ("unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh")
        code = """
            import os, sys
            from pathlib import Path
            assert not Path("/proc/self").exists()
            from sshpyk.demo import load_sandbox, stop_sandbox
            print(load_sandbox(Path(sys.argv[1])))
            print(stop_sandbox(Path(sys.argv[1])))
            """
        r = _py(code, str(root), prefix=prefix)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == "None"  # not taken for the demo's sshd
        assert stranger.poll() is None, "demo --stop killed an unrelated process"
    finally:
        stranger.kill()
        stranger.wait()


# ---- M3: one re-attach per kernel at a time (a real server, a real orphan) ------------------


def _spec_in(data_dir: str, test_hosts, name: str, **config) -> str:
    cfg = {
        "ssh_host_alias": "remote",
        "ssh_config": str(test_hosts.ssh_config),
        "remote_python_prefix": test_hosts.remote_python_prefix,
        "remote_kernel_name": "python3",
        "launch_timeout": 20,
        "shutdown_timeout": 4,
        **config,
    }
    d = Path(data_dir) / "kernels" / name
    d.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [],
        "display_name": f"SSH {name}",
        "language": "python",
        "metadata": {
            "kernel_provisioner": {"provisioner_name": "sshpyk-provisioner", "config": cfg}
        },
    }
    (d / "kernel.json").write_text(json.dumps(spec))
    return name


async def _fetch(jp_fetch, *path, method="GET", body=None) -> tuple[int, object]:
    kw = {"method": method, "allow_nonstandard_methods": True}
    if body is not None:
        kw["body"] = json.dumps(body)
    try:
        r = await jp_fetch(*path, **kw)
    except HTTPClientError as e:
        r = e.response
    ctype = r.headers.get("Content-Type", "")
    return r.code, (json.loads(r.body) if r.body and ctype.startswith("application/json") else None)


ORPHAN_MAKER = """
    import asyncio, os, sys
    from jupyter_client.ioloop import AsyncIOLoopKernelManager as KM
    async def main():
        for _ in range(int(sys.argv[2])):
            km = KM(kernel_name=sys.argv[1])
            await km.start_kernel()
            print(km.kernel_id, flush=True)
        os._exit(0)  # a Jupyter server that dies: no shutdown, the record stays
    asyncio.run(main())
    """


@pytest.fixture
def forget_orphans(netns_hosts):
    yield
    records, _ = registry.all_records()
    for rec in records:
        netns_hosts.ssh("remote", f"kill -9 -- -{int(rec.remote['pgid'])} 2>/dev/null; true")
        registry.remove(rec.kernel_id)


async def test_concurrent_reattach_gets_409_and_leaves_no_ghost(
    jp_fetch, jp_data_dir, netns_hosts, forget_orphans, channels
):
    name = _spec_in(jp_data_dir, netns_hosts, "ssh-m3", lease_timeout=120, channels=channels)
    # whatever earlier tests left is gone, so that any kernel process seen below is this one
    assert await wait_until(lambda: _async(kernel_procs(netns_hosts) == []), 20)
    made = _py(ORPHAN_MAKER, name, "2", timeout=90)
    assert made.returncode == 0, made.stderr
    kid, other = made.stdout.split()[-2:]
    assert registry.load(kid).orphan and registry.load(other).orphan

    # two tabs at once: one re-attaches, the other is told the kernel is busy
    results = await asyncio.gather(
        *(
            _fetch(jp_fetch, "sshpyk", "orphans", kid, "attach", method="POST", body={})
            for _ in range(2)
        )
    )
    assert sorted(code for code, _ in results) == [201, 409], results
    code, kernels = await _fetch(jp_fetch, "api", "kernels")
    assert [k["id"] for k in kernels] == [kid]
    pids = {p.split()[0] for p in kernel_procs(netns_hosts)}
    code, _ = await _fetch(jp_fetch, "api", "kernels", kid, method="DELETE")
    assert code == 204
    # no hidden kernel manager restarts it behind the user's back
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        new = {p.split()[0] for p in kernel_procs(netns_hosts)} - pids
        assert not new, f"a kernel came back after its shutdown: {new}"
        await asyncio.sleep(0.5)
    code, kernels = await _fetch(jp_fetch, "api", "kernels")
    assert kernels == []

    # another process (a second server sharing the registry) is re-attaching the other
    holder = subprocess.Popen(
        [
            PY,
            "-c",
            "import sys,time\nfrom sshpyk import registry\n"
            "with registry.claim(sys.argv[1]):\n print('held', flush=True); time.sleep(60)",
            other,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, body = await _fetch(
            jp_fetch, "sshpyk", "orphans", other, "attach", method="POST", body={}
        )
        assert code == 409, body
    finally:
        holder.kill()
        holder.wait()
    code, body = await _fetch(
        jp_fetch, "sshpyk", "orphans", other, "attach", method="POST", body={}
    )
    assert code == 201, body
    code, _ = await _fetch(jp_fetch, "api", "kernels", other, method="DELETE")
    assert code == 204
    # nothing of either kernel is left on the host: kernels, nannies, sessions
    assert await wait_until(lambda: _async(kernel_procs(netns_hosts) == []), 15), kernel_procs(
        netns_hosts
    )


async def test_listing_orphans_changes_nothing(jp_fetch, netns_hosts, forget_orphans):
    # a record whose kernel is gone from a host that answers: a stale record
    rec = _record(
        kernel_id="stale-1",
        config={
            "ssh_host_alias": "remote",
            "ssh_config": str(netns_hosts.ssh_config),
            "remote_python_prefix": netns_hosts.remote_python_prefix,
        },
        remote={"pid": 999999, "pgid": 999999, "rundir": "/home/nobody/.sshpyk/run/stale-1"},
        server_pid=-1,
    )
    registry.save(rec)
    for _ in range(2):
        code, body = await _fetch(jp_fetch, "sshpyk", "orphans")
        assert code == 200
        assert "stale-1" not in [e["kernel_id"] for e in body["kernels"]]
        assert registry.load("stale-1") is not None  # a GET forgets nothing
    code, body = await _fetch(jp_fetch, "sshpyk", "orphans", "stale-1", method="DELETE")
    assert code == 204, body
    assert registry.load("stale-1") is None


# ---- M4: masters shared between sshpyk processes ---------------------------------------------

ENSURE = """
    import asyncio, sys, time
    from pathlib import Path
    from sshpyk.transport import Master, Target
    m = Master.for_target(Target(sys.argv[1], "ssh", sys.argv[2]))
    if len(sys.argv) > 4:  # the very socket another process uses
        m.control_path = Path(sys.argv[4])
    time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # all at the same moment
    asyncio.run(m.ensure(30))
    # which master answers, asked of ssh itself: "Master running (pid=N)"
    import subprocess
    argv = ["ssh", "-F", sys.argv[2], "-S", str(m.control_path), "-O", "check", sys.argv[1]]
    err = subprocess.run(argv, capture_output=True, text=True).stderr
    print(err.split("pid=")[1].split(")")[0])
    """


def _ssh_procs(config: Path) -> list[tuple[int, str]]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
            state = (d / "status").read_text()
        except OSError:
            continue
        if cmd[0].endswith(b"ssh") and str(config).encode() in cmd and "State:\tZ" not in state:
            found.append((int(d.name), b" ".join(cmd).decode()))
    return found


async def test_a_master_made_by_another_process_gets_the_channels_back(
    netns_hosts, specs, managers, channels, faults
):
    """The review's race: the master ends, reconnecting fails for a while, then another
    sshpyk process (`sshpyk ps`, a second server) makes the new master.  The kernel's local
    ports must work again, and "connected" must wait until they do."""
    km = managers(specs("ssh-m4-race"))
    kc = await start(km)
    await run_code(kc, "v = 'kept'")
    prov = km.provisioner
    hb = km.get_connection_info()["hb_port"]
    # a forward's greeting comes from the kernel; the relay's local endpoint greets by itself,
    # so there only the kernel's heartbeat echo, through the link, says the channels work
    works = channel_answers if channels == "forward" else heartbeat_echoes
    assert await works(hb) is True
    generation = prov.master.generation
    cp = f"ControlPath={prov.master.control_path}"
    faults.cut("remote")
    await prov.master.exit()
    await wait_state(prov, 5, "reconnecting")
    await asyncio.sleep(1)
    # Wait for a moment when our recovery is between attempts (no connection attempt under
    # way, the start lock free), then block this event loop (no await) so that it cannot
    # connect first: the link comes back and another process makes the master.
    config = netns_hosts.ssh_config
    lock = prov.master.control_path.with_suffix(".lock")

    def between_attempts() -> bool:
        if any(cp in c and "ControlMaster=yes" in c for _, c in _ssh_procs(config)):
            return False
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    assert await wait_until(lambda: _async(between_attempts()), 30, 0.01)
    faults.restore("remote")
    other = _py(ENSURE, "remote", str(config), "0", str(prov.master.control_path))
    assert other.returncode == 0, other.stderr
    await wait_state(prov, 20, "connected")
    assert await works(hb) is True, "connected, but the heartbeat channel refuses"
    assert prov.master.generation == generation  # the master is the other process's
    out, reply = await run_code(kc, "print(v)", timeout=30)
    assert reply["status"] == "ok" and out.strip() == "kept"
    kc.stop_channels()
    await km.shutdown_kernel()


def test_concurrent_starts_leave_exactly_one_master(test_hosts, tmp_path):
    # a config of its own: a host key no other test has a master for
    config = tmp_path / "ssh_config"
    shutil.copy(test_hosts.ssh_config, config)
    at = str(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [PY, "-c", textwrap.dedent(ENSURE), "remote", str(config), at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for _ in range(3)
    ]
    try:
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        masters = {out.split()[-1] for out, _ in outs}
        time.sleep(0.5)
        running = [c for _, c in _ssh_procs(config) if " -N " in c]
        assert len(masters) == 1, outs
        assert len(running) == 1 and "ControlMaster=yes" in running[0], running
    finally:
        for pid, _ in _ssh_procs(config):
            os.kill(pid, 9)


# one path: `check` of a kernelspec with its default channels (no kernel is started)
async def test_rest_check_reports_port_forwarding(jp_fetch, jp_data_dir, test_hosts):
    for alias, want in (("noforward", "fail"), ("remote", "ok")):
        name = _spec_in(jp_data_dir, test_hosts, f"ssh-rest-{alias}", ssh_host_alias=alias)
        code, body = await _fetch(jp_fetch, "sshpyk", "kernels", name, "check", method="POST")
        assert code == 200, body
        checks = {c["id"]: c for c in body["checks"]}
        assert checks["port_forwarding"]["status"] == want, checks["port_forwarding"]
        assert body["ok"] is (want == "ok")
        if want == "fail":
            assert "Forwarding no" in checks["port_forwarding"]["hint"]
