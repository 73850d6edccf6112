"""The remote kernel's process: the login umask (review finding M8), and a launch session
that ends when the Jupyter server dies while the kernel lives on (finding L5)."""

from __future__ import annotations

import json

import pytest
from helpers import (
    LOADER_MARK,
    kernel_procs,
    kernel_with_state,
    local_ssh_procs,
    reattached,
    run_code,
    start,
    wait_until,
)

from harness import procinfo
from sshpyk import registry


def _sh(th, script: str) -> str:
    out = th.ssh("remote", script)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def login_umask(netns_hosts):
    """The test user's shell sets umask 027 for every ssh session (as a site might)."""
    bashrc = netns_hosts.state / "hosts" / "remote" / "home" / ".bashrc"
    before = bashrc.read_bytes() if bashrc.exists() else None
    # first: Debian's .bashrc returns early in a non-interactive shell
    bashrc.write_bytes(b"umask 027\n" + (before or b""))
    yield "0027"
    if before is None:
        bashrc.unlink()
    else:
        bashrc.write_bytes(before)


async def test_the_kernel_runs_with_the_login_umask(netns_hosts, specs, managers, login_umask):
    th = netns_hosts
    assert _sh(th, "umask") == login_umask  # what `ssh host umask` prints
    km = managers(specs("ssh-umask"))
    kc = await start(km)
    out, reply = await run_code(
        kc,
        "import os; open(os.path.expanduser('~/m8-result.csv'), 'w').close();"
        "os.mkdir(os.path.expanduser('~/m8-results'));"
        "print(oct(os.umask(0)))",
    )
    assert reply["status"] == "ok", reply
    assert out.strip() == "0o27"
    modes = _sh(th, "stat -c '%a %n' ~/m8-result.csv ~/m8-results").splitlines()
    assert [m.split()[0] for m in modes] == ["640", "750"], modes  # 0666/0777 & ~027
    # sshpyk's own files stay private whatever the umask
    rundir = km.provisioner.remote["rundir"]
    own = _sh(
        th,
        f"stat -c '%a %n' {rundir} {rundir}/connection.json {rundir}/meta.json "
        f"{rundir}/lease {rundir}/kernel.log $(dirname {km.provisioner.remote['ip']})",
    ).splitlines()
    assert [m.split()[0] for m in own] == ["700", "600", "600", "600", "600", "700"], own
    kc.stop_channels()
    await km.shutdown_kernel()
    _sh(th, "rm -rf ~/m8-result.csv ~/m8-results")


def _monitor_clients(th) -> list[str]:
    """Local ssh mux clients running one of sshpyk's remote programs (a kernel's monitor)."""
    return [p for p in local_ssh_procs(th.ssh_config) if LOADER_MARK in p]


def _running(pid: int) -> bool:
    return procinfo.pid_alive(pid)  # a zombie is not running; /proc here, ps on a Mac


async def test_server_kill9_ends_the_monitor_sessions_and_the_kernel_lives(
    netns_hosts,
    server_env,
):
    th = netns_hosts
    s1 = server_env()
    await s1.ready()
    kid = await kernel_with_state(s1, "ssh-persist", "z = 'kept'")
    rec = registry.load(kid)
    meta = json.loads(_sh(th, f"cat {rec.remote['rundir']}/meta.json"))
    assert _monitor_clients(th)
    # the ssh session's own process on the host (until 79a1c4c: the nanny itself)
    session = meta.get("session", meta["nanny"])
    assert _running(session) and _running(meta["nanny"])

    s1.kill9()

    async def sessions_ended():
        return not _monitor_clients(th) and not _running(session)

    # the local side's EOF reaches the remote relay, which exits: sshd closes the session and
    # the local mux client ends (before: it lived as long as the kernel's lease, here 600 s)
    assert await wait_until(sessions_ended, 5, 0.1), _monitor_clients(th)
    assert _running(meta["nanny"]) and _running(meta["pid"])
    assert any(p.split()[0] == str(meta["pid"]) for p in kernel_procs(th))

    # and it can be taken up again, state intact
    s2 = server_env()
    await s2.ready()
    kc = await reattached(s2, kid)
    out, reply = await run_code(kc, "print(z)")
    assert reply["status"] == "ok" and out.strip() == "kept"
    kc.stop_channels()
    code, _ = await s2.call("DELETE", f"api/kernels/{kid}")
    assert code == 204
    assert kernel_procs(th) == []
