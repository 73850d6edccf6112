"""The remote programs, run as sshpyk sends them (the loader, the prelude, parameters on
stdin) by this machine's python against a private $HOME: no ssh, no test host.

A "kernel" here is a small python process that listens where the connection file says;
every process a test starts is ended by its pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sshpyk.remote import _prelude
from sshpyk.remote.protocol import (
    LOADER,
    ack_command,
    messages,
    ping_command,
    program_sha256,
    program_stdin,
    signal_command,
)

HERE = _prelude.host_identity()

FAKE_KERNEL = """
import json, signal, socket, sys, time
info = json.load(open(sys.argv[1]))
socks = []
for name in ("shell", "iopub", "stdin", "control", "hb"):
    if info["transport"] == "ipc":
        s = socket.socket(socket.AF_UNIX)
        s.bind("%s-%d" % (info["ip"], info[name + "_port"]))
    else:
        s = socket.socket()
        s.bind((info["ip"], info[name + "_port"]))
    s.listen(8)
    socks.append(s)
print("fake kernel up", flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    return h


@pytest.fixture
def pids():
    """Pids to end after the test, whatever happened."""
    started: list[int] = []
    yield started
    for pid in started:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def run(
    program: str, params: dict, extra: bytes = b"", kept: bool = False, keep: bool = False
) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-c", LOADER],
        input=program_stdin(program, params, kept=kept, keep=keep) + extra,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return messages(proc.stdout.decode())


def alive(pid: int) -> bool:
    return _prelude.process_start(pid) is not None


def gone_soon(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def sleeper(pids: list[int]) -> int:
    """A process leading its own group, as a kernel does."""
    pid = subprocess.Popen(["sleep", "120"], start_new_session=True).pid
    pids.append(pid)
    return pid


def rundir(home: Path, name: str, meta: dict | None) -> Path:
    d = home / ".sshpyk" / "run" / name
    d.mkdir(parents=True)
    if meta is not None:
        (d / "meta.json").write_text(json.dumps(meta))
    return d


def meta_of(pid: int | None, host: dict, start: str | None = None) -> dict:
    return {
        "host": host,
        "pid": pid,
        "pid_start": start if start is not None else _prelude.process_start(pid),
        "pgid": pid,
        "kernel_id": "k-" + str(pid),
    }


def elsewhere() -> dict:
    return {**HERE, "hostname": HERE["hostname"] + "-other-node"}


def earlier_boot() -> dict:
    return {**HERE, "boot_id": "an-earlier-boot"}


# ---- running.py ---------------------------------------------------------------------------------
def test_running_lists_nothing_on_a_fresh_host(home):
    (out,) = run("running", {"action": "list"})
    assert out == {"kernels": [], "reaped": [], "host": HERE["hostname"]}


def test_running_tells_whose_each_run_dir_is(home, pids):
    live = sleeper(pids)
    rundir(home, "mine", meta_of(live, HERE))
    rundir(home, "theirs", meta_of(live, elsewhere()))
    rundir(home, "rebooted", meta_of(live, earlier_boot()))
    rundir(home, "nameless", None)
    (out,) = run("running", {"action": "list"})
    found = {Path(k["rundir"]).name: k for k in out["kernels"]}
    assert {n: k["where"] for n, k in found.items()} == {
        "mine": "here",
        "theirs": "elsewhere",
        "rebooted": "stale",
        "nameless": "unknown",
    }
    assert found["mine"]["alive"] and found["theirs"]["alive"]  # never dropped unseen
    assert not found["rebooted"]["alive"]
    assert found["theirs"]["hostname"] == HERE["hostname"] + "-other-node"
    assert found["mine"]["lease_age"] is None  # no lease file: not attached


def test_running_signals_only_the_recorded_process(home, pids):
    victim = sleeper(pids)
    start = _prelude.process_start(victim)
    reused = rundir(home, "reused", meta_of(victim, HERE, str(int(start) + 1)))
    (out,) = run("running", {"action": "signal", "rundir": str(reused), "signal": 9})
    assert out["outcome"] == "gone" and alive(victim)
    theirs = rundir(home, "theirs", meta_of(victim, elsewhere()))
    (out,) = run("running", {"action": "signal", "rundir": str(theirs), "signal": 9})
    assert out["outcome"] == "elsewhere" and alive(victim)
    mine = rundir(home, "mine", meta_of(victim, HERE))
    (out,) = run("running", {"action": "signal", "rundir": str(mine), "signal": 15})
    assert out["outcome"] == "done"
    assert gone_soon(victim)  # it ended on that signal


def test_running_kill_ends_a_kernel_and_removes_its_run_dir(home, pids):
    victim = sleeper(pids)
    d = rundir(home, "mine", meta_of(victim, HERE))
    (out,) = run("running", {"action": "kill", "rundir": str(d)})
    assert out["outcome"] == "done" and out["reaped"] == [str(d)]
    assert not d.exists()
    (out,) = run("running", {"action": "kill", "rundir": str(d)})
    assert out["outcome"] == "gone"


def test_reap_clears_leftovers_and_keeps_what_is_another_hosts(home, pids):
    live = sleeper(pids)
    dead = subprocess.Popen(["true"])
    start = _prelude.process_start(dead.pid)
    dead.wait()
    rundir(home, "dead-here", meta_of(dead.pid, HERE, start or "1"))
    rundir(home, "rebooted", meta_of(live, earlier_boot()))
    rundir(home, "theirs", meta_of(live, elsewhere()))
    attached = rundir(home, "attached", meta_of(live, HERE))
    (attached / "lease").touch()
    run_root = home / ".sshpyk" / "run"
    (run_root / "gone-here.exit").write_text(json.dumps({"exit": 0, "host": HERE}))
    (run_root / "gone-there.exit").write_text(json.dumps({"exit": 0, "host": elsewhere()}))
    (out,) = run("running", {"action": "reap"})
    assert sorted(Path(r).name for r in out["reaped"]) == ["dead-here", "rebooted"]
    assert sorted(os.listdir(run_root)) == ["attached", "gone-there.exit", "theirs"]
    assert alive(live)  # attached (its lease is fresh) and another host's: left alone


# ---- inspect.py ----------------------------------------------------------------------------------
def test_inspect_describes_the_environment_and_its_mount_points(home):
    (home / "empty").mkdir()
    (home / "full").mkdir()
    (home / "full" / "x").write_text("x")
    (home / "file").write_text("x")
    points = ["~/empty", "~/full", "~/file", "~/new/deeper"]
    (out,) = run("inspect", {"sshfs": "/nonexistent/sshfs", "mount_points": points})
    assert out["python"] == sys.version.split()[0] and out["prefix"] == sys.prefix
    assert out["jupyter_client"] and out["sshfs"] is None
    assert out["mount_points"] == {
        "~/empty": None,
        "~/full": "not empty",
        "~/file": "not a directory",
        "~/new/deeper": None,  # created under a writable parent
    }


# ---- attach.py ----------------------------------------------------------------------------------
def test_attach_refuses_what_is_not_a_run_dir(home, tmp_path):
    (out,) = run("attach", {"rundir": str(tmp_path)})
    assert out["error"] == "bad_rundir"


def test_attach_to_an_ended_kernel_hands_over_its_exit_code(home):
    run_root = home / ".sshpyk" / "run"
    run_root.mkdir(parents=True)
    (run_root / "ended.exit").write_text(json.dumps({"exit": 3, "host": HERE}))
    (out,) = run("attach", {"rundir": "~/.sshpyk/run/ended"})
    assert out == {"error": "gone", "exit": 3}
    assert not (run_root / "ended.exit").exists()  # taken: once


def test_attach_leaves_another_hosts_kernel_alone(home, pids):
    live = sleeper(pids)
    d = rundir(home, "theirs", meta_of(live, elsewhere()))
    (out,) = run("attach", {"rundir": str(d)}, signal_command(9))
    assert out["error"] == "elsewhere" and alive(live)


# ---- launcher.py, then attach.py ---------------------------------------------------------------
class Session:
    """A launcher (or attach) session, as ssh would run it: stdin to it, its stdout to us."""

    def __init__(self, program: str, params: dict):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOADER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.send(program_stdin(program, params))

    def send(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def next(self) -> dict | None:
        while line := self.proc.stdout.readline():
            (msg,) = messages(line.decode()) or [None]
            if msg is not None:
                return msg
        return None

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture
def fake_kernelspec(tmp_path):
    script = tmp_path / "fake_kernel.py"
    script.write_text(FAKE_KERNEL)
    spec = Path(os.environ["JUPYTER_PATH"]) / "kernels" / "fake"
    spec.mkdir(parents=True)
    argv = ["python", str(script), "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Fake"}))
    return "fake"


def launch_params(name: str, transport: str = "tcp") -> dict:
    return {
        "kernel_name": name,
        "kernel_id": "abcd1234-1",
        "key": "not-a-real-key",
        "signature_scheme": "hmac-sha256",
        "transport": transport,
        "launch_timeout": 20,
        "lease_timeout": 60,
        "kernel_uuid": "abcd1234-0000",
        "kernelspec": "ssh-fake",
        "env": {},
    }


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_launch_then_nanny(home, pids, fake_kernelspec, transport):
    s = Session("launcher", launch_params(fake_kernelspec, transport))
    try:
        ready = s.next()
        assert ready["ready"] is True, ready
        pids.append(ready["pid"])
        run_dir = Path(ready["rundir"])
        meta = json.loads((run_dir / "meta.json").read_text())
        assert meta["pid"] == ready["pid"] == ready["pgid"] and meta["host"] == HERE
        info = json.loads((run_dir / "connection.json").read_text())
        ports = [info[f"{c}_port"] for c in _prelude.CHANNELS]
        assert ports == ready["ports"] == meta["ports"]
        if transport == "ipc":
            assert ports == [1, 2, 3, 4, 5] and info["ip"] == str(run_dir / "k")
        assert oct((run_dir / "connection.json").stat().st_mode & 0o777) == "0o600"
        s.send(ack_command() + ping_command(5))
        assert s.next() == {"pong": 5}
        s.send(signal_command(signal.SIGTERM))
        assert s.next() == {"exit": -signal.SIGTERM}
        assert not run_dir.exists()  # the nanny cleaned up after the kernel
    finally:
        s.close()


def test_an_abandoned_launch_kills_its_kernel(home, pids, fake_kernelspec):
    s = Session("launcher", launch_params(fake_kernelspec))
    ready = s.next()
    pids.append(ready["pid"])
    s.proc.stdin.close()  # EOF before "ack"
    assert s.next() == {"exit": -signal.SIGKILL}
    s.proc.wait(timeout=30)
    assert not Path(ready["rundir"]).exists()


def test_a_detached_kernel_is_taken_up_by_attach(home, pids, fake_kernelspec):
    """After "ack", EOF only detaches: the kernel runs on under its lease; attach takes it
    up (pings, signals) and hands over its exit code from <rundir>.exit."""
    s = Session("launcher", launch_params(fake_kernelspec))
    ready = s.next()
    pids.append(ready["pid"])
    s.send(ack_command())
    s.close()
    assert alive(ready["pid"])
    a = Session("attach", {"rundir": ready["rundir"]})
    try:
        attached = a.next()["attached"]
        assert attached["pid"] == ready["pid"] and attached["lease_age"] == 0
        a.send(ping_command(9))
        assert a.next() == {"pong": 9}
        a.send(signal_command(signal.SIGTERM))
        assert a.next() == {"exit": -signal.SIGTERM}
    finally:
        a.close()
    deadline = time.monotonic() + 10
    while Path(ready["rundir"]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(ready["rundir"]).exists()


def test_launch_names_a_missing_kernelspec_and_what_there_is(home, fake_kernelspec):
    (out,) = [m for m in run("launcher", launch_params("nope")) if "shell_pid" not in m]
    assert out["error"] == "kernelspec_not_found" and "fake" in out["available"]
    assert not (home / ".sshpyk" / "run" / "abcd1234-1").exists()


# ---- programs the host keeps (protocol.LOADER) -------------------------------------------------
PROBE_PARAMS = {"transport": "tcp", "timeout": 0}


def kept_file(home: Path, name: str = "forward_probe") -> Path:
    return home / ".sshpyk" / "programs" / program_sha256(name)


def test_a_program_sent_whole_is_kept_and_later_runs_by_its_sha256(home):
    # a check's or discovery's program is only run; a launch's is kept
    (said,) = run("forward_probe", PROBE_PARAMS)
    assert said["probe"] > 0 and not (home / ".sshpyk").exists()
    (said,) = run("forward_probe", PROBE_PARAMS, keep=True)
    assert said["probe"] > 0
    kept = kept_file(home)
    # the user's alone: 0600 in 0700 directories, named by its content's sha256
    assert kept.stat().st_mode & 0o777 == 0o600
    assert (home / ".sshpyk" / "programs").stat().st_mode & 0o777 == 0o700
    assert (home / ".sshpyk").stat().st_mode & 0o777 == 0o700
    assert [p.name for p in kept.parent.iterdir()] == [kept.name]  # no temporary file left
    sent = program_stdin("forward_probe", PROBE_PARAMS, kept=True)
    assert len(sent) < 200  # the parameters alone cross the link
    (said,) = run("forward_probe", PROBE_PARAMS, kept=True)
    assert said["probe"] > 0


def test_a_program_the_host_does_not_keep_is_asked_for_and_nothing_runs(home):
    assert run("forward_probe", PROBE_PARAMS, kept=True) == [{"error": "program_missing"}]
    assert not (home / ".sshpyk" / "programs").exists()


@pytest.mark.parametrize("change", ["content", "mode", "symlink"])
def test_a_kept_program_is_trusted_only_as_written(home, tmp_path, change):
    """Its content must have the sha256 it is named by, no one else may write it, and it is
    a file, not a symlink: else it is missing (the local side then sends it whole)."""
    run("forward_probe", PROBE_PARAMS, keep=True)
    kept = kept_file(home)
    if change == "content":
        kept.write_text('print("SSHPYK {}")\n')
    elif change == "mode":
        kept.chmod(0o666)
    else:
        target = tmp_path / "elsewhere.py"
        target.write_bytes(kept.read_bytes())
        kept.unlink()
        kept.symlink_to(target)
    assert run("forward_probe", PROBE_PARAMS, kept=True) == [{"error": "program_missing"}]


def test_a_home_that_cannot_keep_programs_still_runs_them_whole(home):
    (home / ".sshpyk").mkdir(mode=0o700)
    (home / ".sshpyk" / "programs").write_text("not a directory")
    (said,) = run("forward_probe", PROBE_PARAMS, keep=True)
    assert said["probe"] > 0
    assert run("forward_probe", PROBE_PARAMS, kept=True) == [{"error": "program_missing"}]


def preloading(program: str, params: dict, stdin: bytes) -> list[dict]:
    """The loader as ``python_command(preload=program)`` runs it: the sha256 in argv."""
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, program_sha256(program)],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return messages(proc.stdout.decode())


def test_a_preloaded_program_runs_its_main_when_the_stdin_names_it(home):
    params = {"action": "list"}
    # nothing kept yet: the program comes whole, as always
    (out,) = preloading("running", params, program_stdin("running", params, keep=True))
    assert out["kernels"] == []
    (out,) = preloading("running", params, program_stdin("running", params, kept=True))
    assert out["kernels"] == []
    # the stdin names another program: that one runs, kept or whole
    whole = program_stdin("forward_probe", PROBE_PARAMS, keep=True)
    (said,) = preloading("running", PROBE_PARAMS, whole)
    assert said["probe"] > 0
    kept = program_stdin("forward_probe", PROBE_PARAMS, kept=True)
    (said,) = preloading("running", PROBE_PARAMS, kept)
    assert said["probe"] > 0


def test_only_programs_that_merely_define_things_may_be_preloaded():
    """Preloaded, a program's top level runs before its stdin says what to run."""
    from sshpyk.remote.protocol import python_command, runs_main_only

    assert runs_main_only("launcher") and not runs_main_only("forward_probe")
    assert program_sha256("launcher") in python_command("/opt/py", preload="launcher")
    with pytest.raises(AssertionError):
        python_command("/opt/py", preload="forward_probe")


def test_kept_programs_no_launch_used_for_a_month_are_removed(home):
    run("forward_probe", PROBE_PARAMS, keep=True)
    programs = home / ".sshpyk" / "programs"
    month = time.time() - 31 * 86400
    stale = programs / ("0" * 64)  # an older sshpyk's launcher, say
    stale.write_text("x")
    os.utime(stale, (month, month))
    used = kept_file(home)
    os.utime(used, (month, month))
    (said,) = run("forward_probe", PROBE_PARAMS, kept=True)  # a launch uses it: kept on
    assert said["probe"] > 0 and used.stat().st_mtime > month + 86400
    run("running", {"action": "list"}, keep=True)  # a program kept: the directory is pruned
    assert not stale.exists() and used.exists()
