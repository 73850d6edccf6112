"""Kernels on a Slurm compute node (kernelspec ``slurm``), on the real Slurm test cluster
(``harness/slurm.py``: login host ``hpc`` with slurmctld, compute host ``node1`` reachable
only from it, a shared ``$HOME``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest
from helpers import run_code, start, wait_state, wait_until

from sshpyk.errors import SSHPykError

pytestmark = pytest.mark.netns

PROBE = "import os, socket; print(socket.gethostname(), os.environ.get('SLURM_JOB_ID'))"


@pytest.fixture
def slurm_spec(specs, slurm_hosts):
    def make(name="ssh-slurm", slurm=None, **config):
        return specs(
            name,
            ssh_host_alias=slurm_hosts.login_alias,
            ssh_config=str(slurm_hosts.ssh_config),
            remote_python_prefix=slurm_hosts.remote_python_prefix,
            channels="relay",
            slurm={"time": "10", **(slurm or {})},
            **config,
        )

    return make


@pytest.fixture
def cluster(slurm_hosts):
    """The cluster, and after the test: no job of the test user is left in it."""
    yield slurm_hosts
    for jid, job in slurm_hosts.squeue_json().items():
        if job.get("JobState") in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING"):
            slurm_hosts.scontrol_root("cancel", jid)


def user_procs_on(cluster, host="node1") -> list[str]:
    """The test user's processes in a host's namespace (pid and command line)."""
    uid = pwd.getpwnam(cluster.user).pw_uid
    pids = subprocess.run(
        ["ip", "netns", "pids", f"{cluster.prefix}_{host}"], capture_output=True, text=True
    ).stdout.split()
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}").st_uid == uid:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                found.append(f"{pid} {argv.decode(errors='replace').strip()}")
    return found


async def test_kernel_runs_on_the_compute_node_and_shutdown_ends_its_job(
    cluster, slurm_spec, managers
):
    km = managers(slurm_spec())
    t0 = time.monotonic()
    kc = await start(km)
    started = time.monotonic() - t0
    status = km.provisioner.status()
    job = status["slurm"]["job_id"]
    out, reply = await run_code(kc, PROBE)
    assert reply["status"] == "ok"
    assert out.split() == ["node1", job], (out, status)
    assert status["state"] == "connected" and status["remote_hostname"] == "node1"
    slurm = status["slurm"]
    assert slurm["state"] == "RUNNING" and slurm["node"] == "node1", slurm
    # its time limit (10 min) and the warning before it (10 min by default: now)
    assert 0 < slurm["ends_at"] - time.time() <= 600 + 5, slurm
    assert slurm["warn_at"] == slurm["ends_at"] - 600
    assert cluster.job(job)["JobName"].startswith("sshpyk-")
    # the kernel is no step of its own: it lives in the batch step, beside the agent
    assert started < 20, started

    # the HMAC key is in nothing Slurm stores or shows
    key = km.session.key.decode()
    assert len(key) >= 32
    shown = cluster.scontrol_root("show", "job", "-d", job).stdout
    script = cluster.scontrol_root("write", "batch_script", job, "-").stdout
    assert "slurm_agent" in script and key not in script and key not in shown
    environ = cluster.root_on(
        "node1", "sh", "-c", f"cat /proc/$(pgrep -u {cluster.user} -f sshpyk-slurm_agent)/environ"
    )
    assert environ.returncode == 0 and "SLURM_JOB_ID" in environ.stdout
    assert key not in environ.stdout
    log = (cluster.home / ".sshpyk" / "jobs" / f"sshpyk-{job}.log").read_text()
    assert key not in log and "ready on node1" in log
    # ... nor in any argv on the node or the login host
    for host in ("node1", "hpc"):
        assert not [p for p in user_procs_on(cluster, host) if key in p], host

    kc.stop_channels()
    await km.shutdown_kernel()
    ended = cluster.wait_job(job, ("CANCELLED", "COMPLETED"), timeout=30)
    assert ended["JobState"] in ("CANCELLED", "COMPLETED")
    assert await wait_until(lambda: _nothing_on(cluster), 15, 0.2), user_procs_on(cluster)
    # the agent took its socket and record with it
    assert not (cluster.home / ".sshpyk" / "jobs" / f"{job}.json").exists()


async def _nothing_on(cluster) -> bool:
    return user_procs_on(cluster) == []


async def test_queued_while_the_node_is_busy_then_runs(cluster, slurm_spec, managers):
    blocker = cluster.occupy_node()
    km = managers(slurm_spec())
    launch = asyncio.ensure_future(start(km))
    try:
        assert await wait_until(lambda: _queued(km), 30, 0.1), km.provisioner.status()
        status = km.provisioner.status()
        assert status["state"] == "launching"
        assert status["step"].startswith("queued: Resources"), status["step"]
        assert status["slurm"]["state"] == "PENDING" and status["slurm"]["reason"] == "Resources"
        job = status["slurm"]["job_id"]
        assert cluster.job(job)["JobState"] == "PENDING"
        await asyncio.sleep(2)  # it stays queued: nothing times out meanwhile
        assert not launch.done()
        cluster.release(blocker)
        kc = await asyncio.wait_for(launch, 60)
    finally:
        if not launch.done():
            launch.cancel()
    out, _ = await run_code(kc, PROBE)
    assert out.split() == ["node1", job]
    kc.stop_channels()
    await km.shutdown_kernel()


async def _queued(km) -> bool:
    if km.provisioner is None:  # jupyter_client makes it once the launch begins
        return False
    status = km.provisioner.status()
    return (status.get("slurm") or {}).get("state") == "PENDING" and "queued" in (
        status["step"] or ""
    )


async def test_cancelling_a_queued_launch_cancels_its_job(cluster, slurm_spec, managers):
    blocker = cluster.occupy_node()
    try:
        km = managers(slurm_spec())
        launch = asyncio.ensure_future(km.start_kernel())
        assert await wait_until(lambda: _queued(km), 30, 0.1), km.provisioner.status()
        job = km.provisioner.status()["slurm"]["job_id"]
        assert km.provisioner.cancel_launch() is True
        with pytest.raises(SSHPykError, match="cancelled"):
            await asyncio.wait_for(launch, 30)
        assert cluster.wait_job(job, "CANCELLED", timeout=20)["JobState"] == "CANCELLED"
        assert km.provisioner.cancel_launch() is False  # nothing to cancel any more
    finally:
        cluster.release(blocker)


async def interrupted(km, kc) -> str:
    """Interrupt a sleeping cell; the error name its reply carries."""
    msg_id = kc.execute("import time; time.sleep(60)")
    await asyncio.sleep(1.0)
    await km.interrupt_kernel()
    while True:
        reply = await kc.get_shell_msg(timeout=20)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"].get("ename")


async def test_restart_stays_in_the_job_and_interrupts_work(cluster, slurm_spec, managers):
    km = managers(slurm_spec("ssh-slurm-signal", interrupt_mode="signal"))
    kc = await start(km)
    job = km.provisioner.status()["slurm"]["job_id"]
    await run_code(kc, "x = 41")
    # interrupt by signal: down the monitor stream to the kernel's group on the node
    assert await interrupted(km, kc) == "KeyboardInterrupt"
    out, _ = await run_code(kc, "print(x + 1)")
    assert out.strip() == "42"

    t0 = time.monotonic()
    await km.restart_kernel(now=True)
    restart = time.monotonic() - t0
    await kc.wait_for_ready(timeout=30)
    out, _ = await run_code(kc, "print('x' in globals()); " + PROBE)
    assert out.split() == ["False", "node1", job], out  # a new kernel, the same job
    assert km.provisioner.status()["slurm"]["job_id"] == job
    assert cluster.job(job)["JobState"] == "RUNNING"
    assert restart < 15, restart
    # interrupt by message after the restart
    km2 = managers(slurm_spec("ssh-slurm-message", interrupt_mode="message"))
    kc2 = await start(km2)
    assert await interrupted(km2, kc2) == "KeyboardInterrupt"
    for k, c in ((km, kc), (km2, kc2)):
        c.stop_channels()
        await k.shutdown_kernel()


async def test_the_time_limit_is_said_instead_of_kernel_died(cluster, slurm_spec, managers):
    km = managers(slurm_spec("ssh-slurm-short", slurm={"time": "1", "walltime_warning": 1}))
    kc = await start(km)
    status = km.provisioner.status()
    job, slurm = status["slurm"]["job_id"], status["slurm"]
    # one minute of time: the warning is due at once
    assert slurm["warn_at"] is not None and slurm["warn_at"] <= time.time() + 1
    await wait_state(km.provisioner, 150, "dead")
    status = km.provisioner.status()
    assert "TIMEOUT" in status["step"], status
    assert status["slurm"]["ended"].startswith(f"Slurm job {job} ended: TIMEOUT"), status
    assert "time limit" in status["slurm"]["ended"]
    assert cluster.wait_job(job, "TIMEOUT", timeout=30)["JobState"] == "TIMEOUT"
    # jupyter_client's restarter reports it dead instead of restarting it into nothing
    await asyncio.sleep(km._restarter.time_to_dead * 2 + 1)
    assert km.provisioner.kernel.launches == 1
    assert km._restarter.restart_limit == 0
    # a restart asked for does not resubmit behind the user's back: it says why
    with pytest.raises(SSHPykError, match="TIMEOUT"):
        await km.restart_kernel(now=True)
    kc.stop_channels()
    with contextlib.suppress(Exception):
        await km.shutdown_kernel(now=True)
    jobs = cluster.squeue_json()
    assert not [j for j in jobs.values() if j.get("JobState") in ("PENDING", "RUNNING")], jobs


async def test_a_bad_partition_is_sbatchs_own_words(cluster, slurm_spec, managers):
    km = managers(slurm_spec("ssh-slurm-bad", slurm={"partition": "nosuch"}))
    with pytest.raises(SSHPykError, match=r"sbatch .* refused.*[Pp]artition"):
        await km.start_kernel()
    assert km.provisioner.status()["state"] == "dead"


async def test_reattach_after_a_server_restart_and_ps_shows_the_job(
    cluster, slurm_spec, server_env
):
    from helpers import kernel_client, reattached, sshpyk_cli

    from sshpyk import registry

    slurm_spec("slurm-persist", lease_timeout=600)
    runtime = Path(os.environ["JUPYTER_RUNTIME_DIR"])
    s1 = server_env()
    await s1.ready()
    code, k = await s1.call("POST", "api/kernels", {"name": "slurm-persist"})
    assert code == 201, k
    kid, s2 = k["id"], None
    try:
        kc = kernel_client(runtime, kid)
        await kc.wait_for_ready(timeout=60)
        await run_code(kc, "kept = 'still here'")
        code, st = await s1.call("GET", "sshpyk/status")
        job = next(x for x in st["kernels"] if x["kernel_id"] == kid)["slurm"]["job_id"]
        kc.stop_channels()
        s1.kill9()

        ps = sshpyk_cli("ps", "--json")
        assert ps.returncode == 0, ps.stderr
        rows = json.loads(ps.stdout)["kernels"]
        mine = [r for r in rows if r.get("kernel_id") == kid]
        assert mine and mine[0].get("slurm_job") == job, rows
        table = sshpyk_cli("ps")
        assert f"Slurm job {job} on node1" in table.stdout, table.stdout

        s2 = server_env()
        await s2.ready()
        kc = await reattached(s2, kid, timeout=60)
        out, _ = await run_code(kc, "print(kept); " + PROBE)
        assert out.split() == ["still", "here", "node1", job]
        code, st = await s2.call("GET", "sshpyk/status")
        again = next(x for x in st["kernels"] if x["kernel_id"] == kid)
        assert again["slurm"]["job_id"] == job and again["state"] == "connected"
        kc.stop_channels()
        code, _ = await s2.call("DELETE", f"api/kernels/{kid}")
        assert code == 204
        cluster.wait_job(job, ("CANCELLED", "COMPLETED"), timeout=30)
    finally:
        # server_env's own cleanup signals records on the "remote" host: not this one's
        with contextlib.suppress(Exception):
            registry.remove(kid)


async def test_a_job_ended_outside_is_said_by_the_server_after_the_kernel_is_dropped(
    cluster, slurm_spec, server_env
):
    """In a real Jupyter server: the job cancelled behind sshpyk's back (an admin, a node
    failure); the kernel is reported dead at once (no "restarting" into nothing), and the
    status API keeps saying why after the kernel manager dropped it."""
    from sshpyk import registry

    slurm_spec("slurm-ended")
    s = server_env()
    await s.ready()
    code, k = await s.call("POST", "api/kernels", {"name": "slurm-ended"})
    assert code == 201, k
    kid = k["id"]
    try:
        code, st = await s.call("GET", "sshpyk/status")
        job = next(x for x in st["kernels"] if x["kernel_id"] == kid)["slurm"]["job_id"]
        assert cluster.run_login(f"scancel {job}").returncode == 0

        async def dropped_with_reason():
            _, kernels = await s.call("GET", "api/kernels")
            _, st = await s.call("GET", "sshpyk/status")
            mine = [x for x in st["kernels"] if x["kernel_id"] == kid]
            return kid not in {x["id"] for x in kernels} and mine and mine[0]["state"] == "dead"

        assert await wait_until(dropped_with_reason, 30, 0.5)
        _, st = await s.call("GET", "sshpyk/status")
        mine = next(x for x in st["kernels"] if x["kernel_id"] == kid)
        assert mine["slurm"]["ended"] == f"Slurm job {job} ended: CANCELLED (it was cancelled)"
        assert mine["step"] == mine["slurm"]["ended"] and mine["kernelspec"] == "slurm-ended"
        # no new job was submitted for it
        assert [j for j, f in cluster.squeue_json().items() if f.get("JobState") == "RUNNING"] == []
    finally:
        with contextlib.suppress(Exception):
            registry.remove(kid)


def test_sshpyk_check_says_the_clusters_slurm_and_partition(cluster, slurm_spec):
    from helpers import sshpyk_cli

    good = sshpyk_cli("check", slurm_spec("slurm-good", slurm={"partition": "short"}), "--json")
    checks = {c["id"]: c for c in json.loads(good.stdout)["checks"]}
    assert checks["slurm"]["status"] == "ok", checks["slurm"]
    assert (
        checks["slurm"]["value"].startswith("slurm 22.")
        and "partition short up" in (checks["slurm"]["value"])
    )
    assert checks["port_forwarding"]["value"] == "not needed"
    bad = sshpyk_cli("check", slurm_spec("slurm-nosuch", slurm={"partition": "nosuch"}), "--json")
    checks = {c["id"]: c for c in json.loads(bad.stdout)["checks"]}
    assert bad.returncode == 1 and checks["slurm"]["status"] == "fail"
    assert "'nosuch' is not on this cluster (it has: debug, short)" in checks["slurm"]["hint"]


async def test_the_prelude_runs_on_the_node_in_the_job(cluster, slurm_spec, managers):
    km = managers(slurm_spec("ssh-slurm-prelude", prelude=["export WHERE=$(hostname)"]))
    kc = await start(km)
    out, _ = await run_code(kc, "import os; print(os.environ['WHERE'])")
    assert out.strip() == "node1"
    kc.stop_channels()
    await km.shutdown_kernel()
