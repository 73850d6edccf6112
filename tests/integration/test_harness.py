"""The test hosts are real and behave like a network: prove it before anything relies on it."""

from __future__ import annotations

import os
import shlex
import socket
import statistics
import subprocess
import time
import uuid

import pytest

from harness import Faults, down, procinfo, up
from harness.topology import netns_list, pid_alive, processes_mentioning, run


def test_remote_answers_with_its_own_name(test_hosts):
    assert test_hosts.identify("remote") == "remote"
    if test_hosts.mode == "netns":
        out = test_hosts.ssh("remote", "hostname")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "remote"


def test_internal_only_through_the_bastion(test_hosts):
    assert test_hosts.identify("internal") == "internal"
    direct = test_hosts.ssh("internal-direct", "true", timeout=15)
    assert direct.returncode == 255
    if test_hosts.mode == "netns":
        assert "No route to host" in direct.stderr
    else:
        assert "Permission denied" in direct.stderr


def test_login_is_key_only_and_host_keys_are_pinned(test_hosts, tmp_path):
    # a client that does not know the host key must refuse it (StrictHostKeyChecking yes)
    cfg = tmp_path / "cfg"
    cfg.write_text(
        test_hosts.ssh_config.read_text().replace(
            str(test_hosts.known_hosts), str(tmp_path / "empty_known_hosts")
        )
    )
    out = run(["ssh", "-F", str(cfg), "--", "remote", "true"], check=False)
    assert out.returncode == 255
    assert "Host key verification failed" in out.stderr
    # without the key there is no way in (no password prompt either: BatchMode)
    cfg.write_text(
        test_hosts.ssh_config.read_text().replace(
            f"IdentityFile {test_hosts.client_key}", f"IdentityFile {tmp_path / 'nokey'}"
        )
    )
    out = run(["ssh", "-F", str(cfg), "--", "remote", "true"], check=False)
    assert out.returncode == 255
    assert "Permission denied (publickey)" in out.stderr


def test_remote_python_runs_a_kernel_stack(test_hosts):
    py = f"{test_hosts.remote_python_prefix}/bin/python"
    code = "import ipykernel, jupyter_client, sys; print(sys.version_info >= (3, 8))"
    out = test_hosts.ssh("remote", shlex.join([py, "-c", code]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_each_host_has_its_own_home(netns_hosts):
    marker = f"only-on-remote-{uuid.uuid4().hex}"
    assert netns_hosts.ssh("remote", f"echo {marker} > ~/marker").returncode == 0
    assert netns_hosts.ssh("remote", "cat ~/marker").stdout.strip() == marker
    other = netns_hosts.ssh("internal", "cat ~/marker 2>/dev/null || echo absent")
    assert other.stdout.strip() == "absent"
    # the test user's home on this machine is untouched too
    assert not any(p for p in (netns_hosts.state / "hosts" / "internal" / "home").glob("marker"))


def test_link_cut_kills_a_keepalive_ssh_and_restore_lets_a_new_one_in(netns_hosts, faults):
    argv = netns_hosts.ssh_argv(
        "remote",
        "sleep",
        "60",
        options=("-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2"),
    )
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        assert proc.poll() is None, "the ssh session should be up before the cut"
        faults.cut("remote")
        t0 = time.monotonic()
        rc = proc.wait(timeout=15)
        died_after = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert rc == 255
    assert died_after < 10
    # while cut, a new connection cannot get through either
    blocked = netns_hosts.ssh("remote", "true", options=("-o", "ConnectTimeout=1"), timeout=10)
    assert blocked.returncode == 255
    faults.restore("remote")
    assert netns_hosts.identify("remote") == "remote"


def test_timed_cut_restores_itself(netns_hosts, faults):
    faults.cut("remote", seconds=1.0)
    assert faults.active_rules("remote")
    deadline = time.monotonic() + 5
    while faults.active_rules("remote") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not faults.active_rules("remote")
    assert netns_hosts.identify("remote") == "remote"


def _connect_ms(address: str, n: int = 7) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        socket.create_connection((address, 22), 5).close()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def test_added_latency_is_measurable(netns_hosts, faults):
    addr = netns_hosts["remote"].address
    before = _connect_ms(addr)
    faults.latency("remote", rtt_ms=100)
    during = _connect_ms(addr)
    faults.unlatency("remote")
    after = _connect_ms(addr)
    # a TCP connect is one round trip: the SYN is held 100 ms on its way in
    assert during - before >= 90, (before, during)
    assert during - before < 400, (before, during)
    assert after < before + 20, (before, after)
    # ssh still works through the delayer and the delayer is gone afterwards
    assert not faults.active_rules("remote")


def test_random_loss_drops_some_not_all(netns_hosts, faults):
    addr = netns_hosts["remote"].address
    faults.loss("remote", 50)
    ok = 0
    for _ in range(40):
        try:
            socket.create_connection((addr, 22), 0.25).close()
            ok += 1
        except OSError:
            pass
    faults.unloss("remote")
    # each connect needs its SYN in and SYN-ACK out to pass: about 1 in 4 succeed
    assert 0 < ok < 40, ok
    assert not faults.active_rules("remote")


def test_faults_are_undone_by_clear(netns_hosts):
    f = Faults(netns_hosts)
    f.cut("remote")
    f.loss("remote", 10)
    f.latency("remote", 20)
    assert len(f.active_rules("remote")) == 5
    f.clear()
    assert f.active_rules("remote") == []
    assert netns_hosts.identify("remote") == "remote"


@pytest.mark.parametrize("mode", ["netns", "loopback"])
def test_teardown_leaves_nothing_behind(test_hosts, mode):
    if mode == "netns" and test_hosts.mode != "netns":
        pytest.skip("needs root for network namespaces")
    # a second, independent instance, so the session's hosts are not disturbed
    th = up(mode, prefix="spkt", index=1)
    names = [h.netns for h in th.hosts.values() if h.netns]
    assert set(names) <= set(netns_list())
    # leave some live state behind on purpose: a ControlMaster, a remote process, a delayer
    cp = th.state / "cm"
    cp.mkdir(mode=0o700)
    master = run(
        th.ssh_argv(
            "remote",
            options=(
                "-o",
                "ControlMaster=yes",
                "-o",
                f"ControlPath={cp}/%C",
                "-o",
                "ControlPersist=60",
                "-f",
                "-N",
            ),
        ),
        check=False,
    )
    assert master.returncode == 0, master.stderr
    assert th.ssh("remote", "nohup sleep 300 >/dev/null 2>&1 &").returncode == 0
    if mode == "netns":
        Faults(th).latency("remote", 10)
    # the backgrounded sleep may take a moment to show (a loaded machine): look again briefly
    deadline = time.monotonic() + 5
    started = processes_mentioning(str(th.state))
    while not any("sleep 300" in cmd for _, cmd in started) and time.monotonic() < deadline:
        time.sleep(0.1)
        started = processes_mentioning(str(th.state))
    assert any("sleep 300" in cmd for _, cmd in started), started

    left = down(th.state)
    assert left == []
    assert not set(names) & set(netns_list())
    assert not th.state.exists()
    assert processes_mentioning(str(th.state)) == []
    sshd_pids = [h.sshd_pid for h in th.hosts.values()]
    assert not any(pid_alive(p) for p in sshd_pids)
    # the safety route stays
    assert (
        "unreachable 10.200.0.0/16"
        in run(["ip", "route", "show", "type", "unreachable"], check=False).stdout
        or mode == "loopback"
    )


# ---- the fallback without /proc (macOS), run for real here and held to /proc's answer -------


def test_ps_fallback_sees_processes_as_proc_does():
    env = {"PATH": "/usr/bin:/bin", "SPK_PROCINFO": f"mark-{uuid.uuid4().hex}"}
    child = subprocess.Popen(["sh", "-c", "sleep 30; true", "marker arg"], env=env)
    zombie = subprocess.Popen(["sleep", "30"])
    try:
        zombie.kill()
        while procinfo.pid_alive(zombie.pid):  # /proc's answer: dead once a zombie
            time.sleep(0.01)
        ps = {p.pid: p for p in procinfo.ps_processes(with_env=True)}
        proc = {p.pid: p for p in procinfo._proc_processes(with_env=False)}
        for pid in (os.getpid(), child.pid, zombie.pid):
            assert (ps[pid].pid, ps[pid].ppid, ps[pid].zombie) == (
                proc[pid].pid,
                proc[pid].ppid,
                proc[pid].zombie,
            )
        assert ps[os.getpid()].cmdline == proc[os.getpid()].cmdline
        assert ps[child.pid].cmdline == proc[child.pid].cmdline == "sh -c sleep 30; true marker arg"
        # a zombie's environment is gone (/proc/PID/environ: ESRCH), so without it here
        proc = {p.pid: p for p in procinfo._proc_processes(with_env=True)}
        assert ps[child.pid].env == proc[child.pid].env == {f"{k}={v}" for k, v in env.items()}
        # this process: every variable without a space /proc shows, ps shows too
        mine = {e for e in proc[os.getpid()].env if not any(c.isspace() for c in e)}
        assert mine and mine <= ps[os.getpid()].env
        assert ps[zombie.pid].zombie and not ps[child.pid].zombie
        assert procinfo.ps_pid_alive(child.pid) and procinfo.pid_alive(child.pid)
        assert not procinfo.ps_pid_alive(zombie.pid)
    finally:
        child.kill()
        child.wait()
        zombie.wait()
    assert not procinfo.ps_pid_alive(child.pid) and not procinfo.pid_alive(child.pid)


def test_lsof_fallback_sees_listeners_as_ss_does():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        lsof = [t for t in procinfo.lsof_listening_tcp() if t[1] == port]
        ss = [t for t in procinfo.listening_tcp() if t[1] == port]
    assert [t[:3] for t in lsof] == [t[:3] for t in ss] == [("127.0.0.1", port, os.getpid())]
    assert [t for t in procinfo.lsof_listening_tcp() if t[1] == port] == []


def test_mount_fallback_sees_the_mounts_of_proc():
    plain = [m for m in procinfo.mount_points() if "\\" not in m]
    from_mount = procinfo.parse_mount(run(["mount"]).stdout)
    assert plain and set(plain) <= set(from_mount)
