"""The Slurm job's agent and the step's bridge (``remote/slurm_agent.py``,
``remote/slurm_bridge.py``) as the programs they are, run here without Slurm: a session's
stdio handed over, its command run beside the agent, its status told back, and the job's
end once no kernel is left (what ends a job whose kernel's lease expired)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sshpyk.remote.protocol import messages, source

JOB = "4242"


def agent(home: Path, **params) -> subprocess.Popen:
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(home / "tmp")}
    (home / "tmp").mkdir(exist_ok=True)
    args = json.dumps({"job": JOB, "first_grace": 60, "idle_grace": 60, **params})
    return subprocess.Popen(
        [sys.executable, "-c", source("slurm_agent"), args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def record(home: Path) -> Path:
    return home / ".sshpyk" / "jobs" / f"{JOB}.json"


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def bridge(
    home: Path, command: str, stdin: bytes = b"", wait: float = 5
) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home)}
    args = json.dumps({"job": JOB, "command": command, "wait": wait})
    return subprocess.run(
        [sys.executable, "-c", source("slurm_bridge"), args],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


def test_a_session_runs_beside_the_agent_with_the_steps_stdio(home):
    a = agent(home)
    try:
        assert wait_for(record(home).exists), a.stderr
        rec = json.loads(record(home).read_text())
        sock = Path(rec["socket"])
        # its socket: in a fresh 0700 dir on the node's own disk, not in the shared $HOME
        assert sock.is_socket() and home / "tmp" in sock.parents
        assert oct(sock.parent.stat().st_mode & 0o777) == "0o700"
        assert oct(record(home).stat().st_mode & 0o777) == "0o600"
        # stdin reaches the command, its stdout and stderr come back, its status is the
        # bridge's; the command's parent is the agent, not the bridge
        out = bridge(home, 'read x; echo "got $x from $PPID"; echo oops >&2; exit 3', b"hi\n")
        assert out.returncode == 3
        assert out.stdout.decode().strip() == f"got hi from {rec['pid']}"
        assert b"oops" in out.stderr
        # binary data passes unchanged
        blob = bytes(range(256)) * 64
        out = bridge(home, "cat", blob)
        assert out.returncode == 0 and out.stdout == blob
    finally:
        a.terminate()
        a.wait(10)
    # SIGTERM (scancel, a time limit): the socket and the record go with it
    assert not record(home).exists() and not sock.parent.exists()


def test_a_process_left_by_a_session_outlives_it_and_keeps_the_job(home):
    """A launcher's nanny (here: a backgrounded sleep in its own session) stays the agent's
    child when its session ends, and the job lasts while it runs."""
    a = agent(home, idle_grace=0.5)
    try:
        assert wait_for(record(home).exists)
        marker = home / "nanny.pid"
        out = bridge(
            home, f"setsid sh -c 'echo $$ > {marker}; sleep 2' </dev/null >/dev/null 2>&1 &"
        )
        assert out.returncode == 0
        assert wait_for(marker.exists)
        nanny = int(marker.read_text())
        ppid = int(Path(f"/proc/{nanny}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert ppid == a.pid  # a subreaper: it stays the agent's
        time.sleep(1.0)  # longer than idle_grace: the job stays for it
        assert a.poll() is None
        # when it ends, the job ends idle_grace later
        assert a.wait(10) == 0
    finally:
        if a.poll() is None:
            a.kill()
    assert "no kernel" in a.stderr.read()
    assert not record(home).exists()


def test_a_job_no_launch_reaches_ends_by_itself(home):
    a = agent(home, first_grace=0.5)
    assert a.wait(10) == 0
    assert not record(home).exists()


def test_a_bridge_without_an_agent_says_so(home):
    out = bridge(home, "true", wait=0.3)
    found = messages(out.stdout.decode())
    assert found and found[0]["error"] == "slurm_agent", out
    assert f"Slurm job {JOB} has no sshpyk agent" in found[0]["message"]
