"""The Slurm test hosts (``tests/harness/slurm.py``) against the real cluster: the login host
``hpc`` over ssh, jobs on ``node1`` with the shared ``$HOME``, node1 out of reach from here,
a job step's stdio as a byte-exact pipe, the queue held by a blocker job, and a teardown that
leaves nothing."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness import slurm
from harness.proc import pid_alive


def _run_step(sh, job_id: str, code: str) -> subprocess.Popen:
    """``srun --overlap`` of ``python3 -c code`` in job ``job_id`` from hpc, over ssh: its
    stdin and stdout are ours (``-u``: slurmstepd passes bytes on as they come)."""
    cmd = f"srun --jobid {job_id} --overlap -N1 -n1 --quiet -u python3 -c {shlex.quote(code)}"
    argv = ["ssh", "-F", sh.ssh_config, "--", sh.login_alias, cmd]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _read_exactly(stream, n: int, timeout: float) -> bytes:
    """``n`` bytes from a pipe, failing if they are not there within ``timeout`` seconds."""
    import selectors

    buf = b""
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while len(buf) < n:
        left = deadline - time.monotonic()
        assert left > 0 and sel.select(left), f"only {buf!r} of {n} bytes in {timeout}s"
        chunk = os.read(stream.fileno(), n - len(buf))
        assert chunk, f"EOF after {buf!r}"
        buf += chunk
    return buf


@pytest.fixture
def sleeper(slurm_hosts):
    """A running job (``sleep 600`` on node1), cancelled after the test."""
    jid = slurm_hosts.sbatch("-J spk-sleeper -o /dev/null --wrap 'sleep 600'")
    slurm_hosts.wait_job(jid, "RUNNING")
    yield jid
    slurm_hosts.run_login(f"scancel {jid}")


def test_ssh_hpc_lands_on_the_login_host_with_the_cluster_config(slurm_hosts):
    out = slurm_hosts.run_login('hostname; echo "$SPK_HOST"; echo "$SLURM_CONF"; id -un')
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["hpc", "hpc", str(slurm_hosts.conf), slurm_hosts.user]
    py = f"{slurm_hosts.remote_python_prefix}/bin/python"
    probe = slurm_hosts.run_login(f"{py} -c 'import ipykernel, jupyter_client'")
    assert probe.returncode == 0, probe.stderr


def test_sinfo_shows_node1_idle_in_both_partitions(slurm_hosts):
    # a job of an earlier test (the cluster is the session's) may still be completing there
    want = ["node1 debug* idle", "node1 short idle"]
    deadline = time.monotonic() + 30
    while True:
        out = slurm_hosts.run_login("sinfo -h -N -o '%N %P %T'")
        assert out.returncode == 0, out.stderr
        found = sorted(out.stdout.split("\n")[:-1])
        if found == want or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert found == want
    assert slurm_hosts.node_names == ["node1"]


def test_batch_job_runs_on_node1_and_writes_into_the_shared_home(slurm_hosts):
    jid = slurm_hosts.sbatch(
        "-p short -o 'out-%j.txt' --wrap 'echo \"$(hostname) $SLURM_JOB_ID $HOME\"'"
    )
    job = slurm_hosts.wait_job(jid, ("COMPLETED", "FAILED", "CANCELLED"))
    assert job["JobState"] == "COMPLETED", job
    assert job["NodeList"] == "node1" and job["Partition"] == "short"
    home = slurm_hosts.run_login("echo $HOME").stdout.strip()
    # written on node1, read on hpc: the same $HOME
    out = slurm_hosts.run_login(f"cat ~/out-{jid}.txt")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["node1", jid, home]
    assert (slurm_hosts.home / f"out-{jid}.txt").read_text() == out.stdout
    slurm_hosts.run_login(f"rm -f ~/out-{jid}.txt")


def test_node1_is_reachable_from_hpc_only(slurm_hosts):
    addr, port = slurm_hosts.node_addresses["node1"], slurm_hosts.slurmd_port
    route = subprocess.run(["ip", "route", "get", addr], capture_output=True, text=True)
    # the harness's unreachable route for 10.200.0.0/16 is the only one that matches
    assert route.returncode != 0 and "No route to host" in route.stderr, route
    t0 = time.monotonic()
    with pytest.raises(OSError), socket.create_connection((addr, port), timeout=3):
        pass
    assert time.monotonic() - t0 < 2, "refused at once by the unreachable route, no timeout"
    probe = f"python3 -c 'import socket; socket.create_connection((\"{addr}\", {port}), 3)'"
    out = slurm_hosts.run_login(probe)
    assert out.returncode == 0, out.stderr


def test_srun_step_is_a_byte_exact_pipe_to_node1(slurm_hosts, sleeper):
    host = _run_step(slurm_hosts, sleeper, "import socket; print(socket.gethostname())")
    out, _ = host.communicate(timeout=30)
    assert (host.returncode, out) == (0, b"node1\n")
    echo = (
        "import os\nwhile True:\n d = os.read(0, 65536)\n if not d: break\n"
        " while d: d = d[os.write(1, d):]"
    )
    step = _run_step(slurm_hosts, sleeper, echo)
    try:
        # no newline: only an unbuffered step (-u) passes it on before more comes
        step.stdin.write(b"ready?")
        step.stdin.flush()
        assert _read_exactly(step.stdout, 6, 30) == b"ready?"
        data = bytes(range(256)) * 64
        step.stdin.write(data)
        step.stdin.flush()
        assert _read_exactly(step.stdout, len(data), 30) == data
        step.stdin.close()
        assert step.wait(timeout=30) == 0
        assert step.stdout.read() == b""
    finally:
        if step.poll() is None:
            step.kill()
            step.wait()


def test_a_blocker_keeps_the_next_job_pending_until_released(slurm_hosts):
    blocker = slurm_hosts.occupy_node()
    jid = slurm_hosts.sbatch("-o /dev/null --wrap 'sleep 600'")
    try:
        deadline = time.monotonic() + 20
        while (job := slurm_hosts.job(jid)).get("Reason") != "Resources":
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["JobState"] == "PENDING"
        assert slurm_hosts.squeue_json()[blocker]["JobState"] == "RUNNING"
        slurm_hosts.release(blocker)
        assert slurm_hosts.job(blocker)["JobState"] == "CANCELLED"
        assert slurm_hosts.wait_job(jid, "RUNNING", timeout=20)["NodeList"] == "node1"
    finally:
        slurm_hosts.run_login(f"scancel {jid} {blocker}")


def test_teardown_leaves_nothing_and_the_cluster_comes_back(slurm_hosts, netns_hosts):
    """Last in this module: it tears the session's cluster down (a job running) and builds
    it anew for whoever comes next."""
    jid = slurm_hosts.sbatch("-o /dev/null --wrap 'sleep 600'")
    slurm_hosts.wait_job(jid, "RUNNING")
    # while up, leftovers() sees every daemon of the cluster (so it would see a stray one)
    seen = slurm.leftovers(slurm_hosts.prefix, netns_hosts.state)
    for daemon in ("munged", "slurmctld", "slurmd", "slurmstepd", "sshd"):
        assert any(f"({daemon}:" in x for x in seen), seen
    pids = [int(x.split()[1]) for x in seen if x.startswith("pid ")]
    try:
        assert slurm.down(netns_hosts.state) == []
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"{slurm_hosts.prefix}_hpc" not in names
        assert f"{slurm_hosts.prefix}_node1" not in names
        assert [p for p in pids if pid_alive(p)] == []
        assert "Host hpc" not in Path(slurm_hosts.ssh_config).read_text()
        mounts = Path("/proc/self/mounts").read_text()
        assert str(slurm_hosts.dir) not in mounts and str(slurm_hosts.hostdir) not in mounts
        assert not slurm_hosts.dir.exists() and not slurm_hosts.hostdir.exists()
        assert netns_hosts.identify("remote") == "remote", "the instance itself lives on"
    finally:
        vars(slurm_hosts).update(vars(slurm.up(netns_hosts)))
    out = slurm_hosts.run_login("hostname; sinfo -h -N -o '%N %P %T'")
    assert out.stdout.split("\n")[:-1] == ["hpc", "node1 debug* idle", "node1 short idle"], out
