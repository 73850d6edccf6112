"""Remote kernels are identified by host and process (review finding M5).

A run dir's meta.json names its host (hostname, boot id, machine id) and each process with
its start time.  reap, shut down, re-attach and signals act only when all of them match:
a reused pid (the host rebooted, or the pid came round again) is never signalled, and the
run dirs of another host that shares the home directory (HPC login nodes behind one alias)
are neither removed nor signalled, only listed as on that host.

The test hosts share this machine's pid namespace and kernel (same boot id) but each has
its own hostname and home, so "another node" is a run dir written as if by a host with
another name, and "a stranger" is an unrelated process started over ssh on the test host.
"""

from __future__ import annotations

import ast
import asyncio
import json
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from helpers import call, kernel_procs, remote_procs, run_code, sshpyk_cli, start

from harness import procinfo
from sshpyk import orphans, registry
from sshpyk.errors import SSHPykError
from sshpyk.remote import _prelude
from sshpyk.remote.protocol import messages, program_stdin, python_command, source
from sshpyk.transport import Target

REMOTE = Path(__file__).resolve().parents[2] / "sshpyk" / "remote"


def _remote_python(th, program: str, params: dict, extra: bytes = b"", timeout=30) -> list[dict]:
    """Run one of sshpyk's remote programs on the test host, as sshpyk does."""
    proc = subprocess.run(
        th.ssh_argv("remote", python_command(th.remote_python_prefix)),
        input=program_stdin(program, params) + extra,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return [m for m in messages(proc.stdout.decode()) if "shell_pid" not in m]


def _sh(th, script: str) -> str:
    out = th.ssh("remote", script)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _stranger(th, tag: int) -> int:
    """An unrelated process on the test host, leading its own process group."""
    _sh(th, f"setsid sleep {tag} </dev/null >/dev/null 2>&1 &")
    for _ in range(100):
        found = [p for p in remote_procs(th) if p.split(" ", 1)[1].strip() == f"sleep {tag}"]
        if found:
            return int(found[0].split()[0])
        time.sleep(0.05)
    raise AssertionError(f"sleep {tag} did not start")


def _alive(pid: int) -> bool:
    return procinfo.pid_alive(pid)  # a zombie is dead; /proc here, ps on a Mac


def _start_ticks(pid: int) -> str:
    # as a run dir records it (/proc's start ticks, ps's start time where there is none)
    return _prelude.process_start(pid)


def _identity(th) -> dict:
    """The host's identity as its own python tells it (the prelude's, run there)."""
    code = Path(_prelude.__file__).read_text() + "\nprint(json.dumps(host_identity()))\n"
    return json.loads(_sh(th, f"{th.remote_python_prefix}/bin/python -c {shlex.quote(code)}"))


def _fake_rundir(th, name: str, meta: dict, lease_age: float = 3600) -> str:
    """A run dir as a launcher would leave it, its lease ``lease_age`` seconds old."""
    rundir = f"~/.sshpyk/run/{name}"
    text = json.dumps(meta)
    _sh(
        th,
        f"umask 077; mkdir -p {rundir} && printf %s {shlex.quote(text)} > {rundir}/meta.json"
        f" && touch -d @{int(time.time() - lease_age)} {rundir}/lease",
    )
    return _sh(th, f"cd {rundir} && pwd")


def _meta(pid: int, host: dict, start: str, **extra) -> dict:
    return {
        "kernel_id": str(uuid.uuid4()),
        "host": host,
        "pid": pid,
        "pid_start": start,
        "pgid": pid,
        "nanny": pid,
        "nanny_start": start,
        "transport": "ipc",
        "lease_timeout": 3600,
        "started_at": time.time() - 4000,
        **extra,
    }


def _record(th, rundir: str, pid: int) -> registry.Record:
    rec = registry.Record(
        kernel_id=str(uuid.uuid4()),
        kernelspec="ssh-identity",
        display_name="SSH identity",
        config={
            "ssh_host_alias": "remote",
            "ssh_config": str(th.ssh_config),
            "remote_python_prefix": th.remote_python_prefix,
            "remote_kernel_name": "python3",
        },
        remote={"rundir": rundir, "pid": pid, "pgid": pid, "hostname": "remote"},
        key="0" * 32,
        signature_scheme="hmac-sha256",
        started_at=time.time() - 4000,
        server_pid=999_999_999,  # a server that is gone: an orphan
        local_ports=None,
    )
    registry.save(rec)
    return rec


@pytest.fixture
def strangers(netns_hosts, tmp_path, monkeypatch):
    """Unrelated processes on the test host, killed (by pid) afterwards; a private registry."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    made: list[int] = []

    def make(tag: int) -> int:
        pid = _stranger(netns_hosts, tag)
        made.append(pid)
        return pid

    yield make
    for pid in made:
        netns_hosts.ssh("remote", f"kill -9 {pid} 2>/dev/null; true")
    netns_hosts.ssh("remote", "rm -rf ~/.sshpyk/run/id-*")


def test_every_remote_program_carries_the_identity_it_imports():
    """launcher.py, running.py and attach.py share remote/_prelude.py in the package; each
    runs alone on the host (no sshpyk there), so what is sent starts with it, and drops the
    import: one source, no relative import left, and it compiles."""
    for name in ("launcher", "running", "attach"):
        sent = source(name)
        tree = ast.parse(sent)
        defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert defined.count("host_identity") == 1, name
        relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
        assert not relative, name
        assert "# sshpyk: bundled" not in sent and sent.isascii()


async def test_a_reused_pid_is_never_signalled(netns_hosts, strangers):
    """(a) Stale run dirs naming a live stranger's pid, once with another start time (the
    pid came round again) and once from an earlier boot: reap, shut down, signal and
    re-attach all leave the stranger alive; reap clears the stale run dirs."""
    th = netns_hosts
    here = _identity(th)
    victim = strangers(371)
    start = _start_ticks(victim)
    reused = _fake_rundir(th, "id-reused-1", _meta(victim, here, str(int(start) + 1)))
    rebooted = _fake_rundir(th, "id-reboot-1", _meta(victim, {**here, "boot_id": "0" * 32}, start))

    # the monitor's "signal N" (attach.py) and the provisioner's fallback (running.py signal)
    for rundir in (reused, rebooted):
        (reply,) = _remote_python(
            th, "attach", {"rundir": rundir, "drop_stale": True}, b"signal 9\n"
        )
        assert reply.get("error") == "gone", reply
        (out,) = _remote_python(th, "running", {"action": "signal", "rundir": rundir, "signal": 9})
        assert out["outcome"] == "gone", out
    assert _alive(victim)

    # orphan shut down (the sidebar's "shut down", DELETE /sshpyk/orphans/<id>)
    rec = _record(th, reused, victim)
    await orphans.shut_down(rec)
    assert _alive(victim)
    assert registry.load(rec.kernel_id) is None  # nothing of that kernel runs: forgotten

    # sshpyk reap, and reap --all
    reused = _fake_rundir(th, "id-reused-2", _meta(victim, here, str(int(start) + 1)))
    r = sshpyk_cli(
        "reap", "remote", "--ssh-config", str(th.ssh_config),
        "--remote-python-prefix", th.remote_python_prefix, "--all",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert _alive(victim), "reap killed a stranger that reuses a recorded pid"
    assert f"reaped {reused}" in r.stdout and f"reaped {rebooted}" in r.stdout, r.stdout
    assert _sh(th, "ls -A ~/.sshpyk/run | grep '^id-' | wc -l") == "0"


async def test_another_hosts_run_dirs_are_left_alone(netns_hosts, strangers):
    """(b) A home shared with another node: its run dir, with a live kernel-like process
    (here: the stranger), is listed as on that host, never removed, never signalled."""
    th = netns_hosts
    here = _identity(th)
    victim = strangers(372)
    other = {"hostname": "login2", "boot_id": str(uuid.uuid4()), "machine_id": uuid.uuid4().hex}
    meta = _meta(victim, other, _start_ticks(victim), ip="/nonexistent/k", ipc_dir=None)
    theirs = _fake_rundir(th, "id-other-1", meta)
    # an exit file of that node's kernel, waiting for a monitor there
    _sh(th, f"printf %s {shlex.quote(json.dumps({'exit': 0, 'host': other}))} > {theirs}.exit")

    for everything in (False, True):
        result = await orphans.reap(
            Target("remote", "ssh", str(th.ssh_config)), th.remote_python_prefix, everything
        )
        assert theirs not in result["reaped"]
        (listed,) = [k for k in result["kernels"] if k["rundir"] == theirs]
        assert listed["where"] == "elsewhere" and listed["hostname"] == "login2", listed
        assert result["host"] == here["hostname"] == "remote"
    assert _alive(victim)
    assert _sh(th, f"ls -A {theirs} | sort | tr '\\n' ' '") == "lease meta.json"
    assert _sh(th, f"cat {theirs}.exit") != ""

    # sshpyk ps / the sidebar list it as running on that host; shut down and re-attach refuse
    rec = _record(th, theirs, victim)
    (entry,) = [e for e in await orphans.probe([rec]) if e["kernel_id"] == rec.kernel_id]
    assert entry["alive"] and entry["elsewhere"] and entry["on_host"] == "login2", entry
    ps = sshpyk_cli("ps")
    assert ps.returncode == 0 and "on another host (login2)" in ps.stdout, ps.stdout
    r = sshpyk_cli(
        "reap", "remote", "--ssh-config", str(th.ssh_config),
        "--remote-python-prefix", th.remote_python_prefix, "--all",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"left alone {theirs}: on another host (login2)" in r.stdout, r.stdout
    assert _alive(victim) and registry.load(rec.kernel_id) is not None
    with pytest.raises(SSHPykError) as err:
        await orphans.shut_down(rec)
    assert err.value.kind == "elsewhere" and "login2" in str(err.value)
    assert registry.load(rec.kernel_id) is not None  # still someone's kernel: kept
    (reply,) = _remote_python(th, "attach", {"rundir": theirs, "drop_stale": True}, b"signal 9\n")
    assert reply["error"] == "elsewhere" and "login2" in reply["message"], reply
    (out,) = _remote_python(th, "running", {"action": "signal", "rundir": theirs, "signal": 9})
    assert out["outcome"] == "elsewhere" and out["hostname"] == "login2", out
    assert _alive(victim)
    registry.remove(rec.kernel_id)


async def test_a_real_kernel_records_its_host_and_processes(netns_hosts, specs, managers):
    """(c) What the launcher records is what the checks need, and normal reap still ends
    a detached kernel of this host (the resilience tests cover shut down and re-attach)."""
    th = netns_hosts
    km = managers(specs("ssh-identity-real"))
    kc = await start(km)
    await run_code(kc, "x = 1")
    remote = km.provisioner.remote
    meta = json.loads(_sh(th, f"cat {remote['rundir']}/meta.json"))
    assert meta["host"] == _identity(th) == remote["host"]
    assert meta["pid_start"] == _start_ticks(meta["pid"])
    assert meta["nanny_start"] == _start_ticks(meta["nanny"])
    assert meta["session_start"] == _start_ticks(meta["session"])
    (listed,) = [
        k
        for k in _remote_python(th, "running", {"action": "list"})[0]["kernels"]
        if k["rundir"] == remote["rundir"]
    ]
    assert listed["where"] == "here" and listed["alive"] and listed["nanny_alive"]
    kc.stop_channels()
    await km.shutdown_kernel()
    assert kernel_procs(th) == []
    await asyncio.sleep(0)


async def test_run_dirs_without_identity_are_left_to_their_lease(netns_hosts, strangers):
    """A run dir an older sshpyk wrote (no host, no start times) and one still being set up
    (no meta.json yet): nothing proves whose they are, so nothing acts on them."""
    th = netns_hosts
    victim = strangers(373)
    legacy = {
        k: v
        for k, v in _meta(victim, {}, "").items()
        if k not in ("host", "pid_start", "nanny_start")
    }
    old = _fake_rundir(th, "id-legacy-1", legacy)
    _sh(th, "mkdir -m 700 ~/.sshpyk/run/id-launching-1")
    result = await orphans.reap(
        Target("remote", "ssh", str(th.ssh_config)), th.remote_python_prefix, True
    )
    assert result["reaped"] == [], result["reaped"]
    assert {k["rundir"].rsplit("/", 1)[1]: k["where"] for k in result["kernels"]} == {
        "id-launching-1": "unknown",
        "id-legacy-1": "unknown",
    }
    (reply,) = _remote_python(th, "attach", {"rundir": old}, b"signal 9\n")
    assert reply["error"] == "unverified", reply
    rec = _record(th, old, victim)
    with pytest.raises(SSHPykError) as err:
        await orphans.shut_down(rec)
    assert err.value.kind == "unverified"
    assert _alive(victim)
    assert _sh(th, "ls -A ~/.sshpyk/run | grep '^id-' | sort | tr '\\n' ' '") == (
        "id-launching-1 id-legacy-1"
    )
    registry.remove(rec.kernel_id)


async def test_rest_refuses_another_hosts_kernel_with_409(netns_hosts, strangers, jp_fetch):
    """Through the REST API the sidebar uses: another node's kernel is listed as such, and
    shutting it down or re-attaching it is a 409 that signals nothing and keeps the record."""
    th = netns_hosts
    victim = strangers(373)
    other = {"hostname": "login3", "boot_id": str(uuid.uuid4()), "machine_id": uuid.uuid4().hex}
    meta = _meta(victim, other, _start_ticks(victim), ip="/nonexistent/k", ipc_dir=None)
    theirs = _fake_rundir(th, "id-other-rest", meta, lease_age=1)
    rec = _record(th, theirs, victim)
    listed = await call(jp_fetch, "sshpyk", "orphans")
    (entry,) = [k for k in listed["kernels"] if k["kernel_id"] == rec.kernel_id]
    assert entry["elsewhere"] and entry["on_host"] == "login3", entry
    err = await call(jp_fetch, "sshpyk", "orphans", rec.kernel_id, method="DELETE", expect=409)
    assert "login3" in err["message"], err
    assert _alive(victim) and registry.load(rec.kernel_id) is not None
    registry.remove(rec.kernel_id)
