"""Resilience on the real test hosts: link cuts, a dying master, a host gone for good, a
killed Jupyter server (re-attach, lease, reap).  Nothing may be left behind."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from helpers import (
    kernel_client,
    kernel_procs,
    kernel_with_state,
    run_code,
    sshpyk_cli,
    start,
    wait_state,
    wait_until,
)

from sshpyk import registry

CUT = 30.0


async def test_idle_kernel_survives_a_30s_cut(netns_hosts, specs, managers, channels, faults):
    km = managers(specs("ssh-cut-idle"))
    kc = await start(km)
    await run_code(kc, "x = 41")
    prov = km.provisioner
    pid = prov.remote["pid"]
    t_cut = time.monotonic()
    faults.cut("remote")
    await wait_state(prov, 8, "reconnecting")
    reconnecting_since = prov.since
    await asyncio.sleep(CUT - (time.monotonic() - t_cut))
    assert prov.state == "reconnecting"  # not lost, not dead, not restarted
    faults.restore("remote")
    took = await wait_state(prov, 10, "connected")
    print(f"idle: tunnel back {took:.2f} s after the restore")
    assert took < 2.0
    assert prov.since > reconnecting_since
    out, reply = await run_code(kc, "x += 1; print(x)")
    assert reply["status"] == "ok" and out.strip() == "42"  # same kernel, same state
    assert prov.remote["pid"] == pid and prov.launches == 1
    kc.stop_channels()
    await km.shutdown_kernel()
    assert kernel_procs(netns_hosts) == []


async def test_a_cell_running_through_a_cut_delivers_its_reply(
    netns_hosts, specs, managers, channels, faults
):
    km = managers(specs("ssh-cut-busy"))
    kc = await start(km)
    prov = km.provisioner
    code = (
        "import time\n"
        "for i in range(8):\n"
        "    print('tick', i, flush=True)\n"
        "    time.sleep(1)\n"
        "result = 'finished'\n"
        "print(result)"
    )
    msg_id = kc.execute(code)
    await asyncio.sleep(1.5)  # it runs, and prints, when the link goes
    faults.cut("remote")
    await asyncio.sleep(CUT)
    faults.restore("remote")
    t0 = time.monotonic()
    reply = await kc.get_shell_msg(timeout=30)
    took = time.monotonic() - t0
    print(f"busy: reply {took:.2f} s after the restore")
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "ok"
    # every line printed during the cut arrives, in order (TCP kept it; nothing is dropped)
    text = ""
    while True:
        try:
            msg = await kc.get_iopub_msg(timeout=5)
        except Exception:
            break
        if msg["msg_type"] == "stream" and msg["parent_header"].get("msg_id") == msg_id:
            text += msg["content"]["text"]
        idle = msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
        if idle and msg["parent_header"].get("msg_id") == msg_id:
            break
    assert text.split("\n")[:9] == [f"tick {i}" for i in range(8)] + ["finished"], text
    assert took < 5.0
    await wait_state(prov, 5, "connected")
    assert prov.launches == 1
    kc.stop_channels()
    await km.shutdown_kernel()


async def test_host_gone_for_good_is_lost_then_shuts_down_once_back(
    netns_hosts, specs, managers, channels, faults
):
    km = managers(specs("ssh-lost", lost_timeout=5, shutdown_timeout=3))
    kc = await start(km)
    prov = km.provisioner
    faults.cut("remote")
    await wait_state(prov, 8, "reconnecting")
    await wait_state(prov, 12, "lost")
    assert await km.is_alive()  # lost is not dead: no restart behind the user's back
    faults.restore("remote")
    await wait_state(prov, 10, "connected")
    kc.stop_channels()
    await km.shutdown_kernel()
    assert kernel_procs(netns_hosts) == []


@pytest.mark.parametrize("with_cut", [False, True], ids=["master-exit", "cut-and-master-death"])
async def test_a_new_master_takes_the_kernel_up_again(
    netns_hosts, specs, managers, channels, faults, with_cut
):
    """The master dies (with the link, or on its own): a fresh master and monitor take the
    kernel up, its clients reconnect to the same local ports, state intact.  With the cut,
    the old connection's sshd still holds the kernel's sockets and must be dropped."""
    km = managers(specs(f"ssh-newmaster-{int(with_cut)}"))
    kc = await start(km)
    await run_code(kc, "y = 'kept'")
    prov = km.provisioner
    ports = dict(km.get_connection_info())
    generation = prov.master.generation
    if with_cut:
        faults.cut("remote")
    await prov.master.exit()
    await wait_state(prov, 5, "reconnecting")
    if with_cut:
        await asyncio.sleep(2)
        faults.restore("remote")
    took = await wait_state(prov, 15, "connected")
    print(f"new master ({'cut' if with_cut else 'exit'}): connected again after {took:.2f} s")
    assert prov.master.generation == generation + 1
    assert dict(km.get_connection_info()) == ports
    try:
        out, reply = await run_code(kc, "print(y)", timeout=30)
    except TimeoutError:
        _diagnose(netns_hosts, prov)
        raise
    assert reply["status"] == "ok" and out.strip() == "kept"
    # and the new monitor works: interrupt, then a clean shutdown
    await km.interrupt_kernel()
    kc.stop_channels()
    await km.shutdown_kernel()
    assert kernel_procs(netns_hosts) == []


def _diagnose(th, prov) -> None:
    """What the forwards and the remote side look like (printed when a test fails)."""
    import subprocess as sp

    print("forwards", prov.forwards, "local ports", prov.local_ports, "state", prov.state)
    print("master", prov.master.identity, "forwards made on", prov.kernel._master_identity)
    print(sp.run(["ss", "-Htnp"], capture_output=True, text=True).stdout)
    print(
        th.ssh("remote", "ss -Htnp; ps -ef | grep -v grep | grep -E 'sshd|ipykernel|python'").stdout
    )


# ---- the Jupyter server is killed ---------------------------------------------------------


async def test_server_kill9_then_reattach_with_state_intact(netns_hosts, server_env, channels):
    runtime = Path(os.environ["JUPYTER_RUNTIME_DIR"])
    s1 = server_env()
    await s1.ready()
    kid = await kernel_with_state(s1, "ssh-persist", "z = 'survived'")
    rec = registry.load(kid)
    assert rec is not None and rec.server_pid == s1.proc.pid
    assert oct(os.stat(registry.directory()).st_mode & 0o777) == "0o700"
    assert oct(os.stat(registry.directory() / f"{kid}.json").st_mode & 0o777) == "0o600"

    s1.kill9()
    # the remote kernel keeps running; `sshpyk ps` lists it as an orphan
    assert kernel_procs(netns_hosts)
    ps = sshpyk_cli("ps", "--json")
    assert ps.returncode == 0, ps.stderr
    listed = {e["kernel_id"]: e for e in json.loads(ps.stdout)["kernels"]}
    assert listed[kid]["orphan"] and listed[kid]["alive"]
    assert listed[kid]["host_alias"] == "remote" and listed[kid]["kernelspec"] == "ssh-persist"
    assert "key" not in listed[kid]
    table = sshpyk_cli("ps")
    assert kid in table.stdout and "gone" in table.stdout

    s2 = server_env()
    await s2.ready()
    code, body = await s2.call("GET", "sshpyk/orphans")
    assert code == 200
    (orphan,) = [e for e in body["kernels"] if e["kernel_id"] == kid]
    assert orphan["alive"] and orphan["host_alias"] == "remote" and orphan["started_at"]
    code, model = await s2.call("POST", f"sshpyk/orphans/{kid}/attach", {})
    assert code == 201, model
    code, kernels = await s2.call("GET", "api/kernels")
    assert kid in [k["id"] for k in kernels]
    code, body = await s2.call("GET", "sshpyk/orphans")
    assert kid not in [e["kernel_id"] for e in body["kernels"]]
    kc = kernel_client(runtime, kid)
    await kc.wait_for_ready(timeout=30)
    out, reply = await run_code(kc, "print(z)")
    assert reply["status"] == "ok" and out.strip() == "survived"
    kc.stop_channels()
    assert registry.load(kid).server_pid == s2.proc.pid
    code, _ = await s2.call("DELETE", f"api/kernels/{kid}")
    assert code == 204
    assert registry.load(kid) is None
    assert kernel_procs(netns_hosts) == []


async def test_orphans_can_be_shut_down_reaped_or_expire(netns_hosts, server_env, channels):
    s1 = server_env()
    await s1.ready()
    ids = {}
    for spec in ("ssh-persist", "ssh-persist", "ssh-short-lease"):
        code, k = await s1.call("POST", "api/kernels", {"name": spec})
        assert code == 201, k
        ids.setdefault(spec, []).append(k["id"])
    s1.kill9()
    t_killed = time.monotonic()
    s2 = server_env()
    await s2.ready()
    # shut one down through the REST API
    victim, reaped = ids["ssh-persist"]
    rec = registry.load(victim)
    code, _ = await s2.call("DELETE", f"sshpyk/orphans/{victim}")
    assert code == 204
    assert registry.load(victim) is None
    assert not any(str(rec.remote["pid"]) == p.split()[0] for p in kernel_procs(netns_hosts))
    code, _ = await s2.call("DELETE", f"sshpyk/orphans/{victim}")
    assert code == 404
    # the short lease ends its kernel by itself (10 s without a monitor)
    (short,) = ids["ssh-short-lease"]
    short_pid = str(registry.load(short).remote["pid"])

    async def short_gone():
        return not any(p.split()[0] == short_pid for p in kernel_procs(netns_hosts))

    assert await wait_until(short_gone, 30, 0.5)
    print(f"lease: abandoned kernel ended {time.monotonic() - t_killed:.1f} s after kill -9")
    # reap clears the host: the remaining orphan is ended, records of both are dropped
    assert kernel_procs(netns_hosts)
    r = sshpyk_cli("reap", "remote", "--ssh-config", str(netns_hosts.ssh_config))
    assert r.returncode == 0, r.stderr
    assert "reaped" in r.stdout
    assert kernel_procs(netns_hosts) == []
    assert registry.load(reaped) is None and registry.load(short) is None
    runs = netns_hosts.ssh("remote", "ls -A ~/.sshpyk/run 2>/dev/null | wc -l").stdout.strip()
    assert runs == "0"
