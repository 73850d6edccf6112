"""The relay channel path (``channels: relay``) on the real test hosts."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import time

from helpers import kernel_procs, run_code, start, wait_state
from jupyter_client.session import Session


async def test_relay_kernel_runs_code_and_shuts_down(test_hosts, specs, managers):
    km = managers(specs(channels="relay"))
    kc = await start(km)
    out, reply = await run_code(kc, "print(6 * 7)")
    assert reply["status"] == "ok" and out.strip() == "42"
    # status and round-trip time come down the relay's own link (ping frames)
    rtt = await km.provisioner.measure_rtt()
    status = km.provisioner.status()
    assert rtt is not None and 0 < rtt < 5 and status["state"] == "connected"
    assert status["rtt_ms"] == round(rtt * 1000, 1)
    kc.stop_channels()
    await km.shutdown_kernel()
    assert kernel_procs(test_hosts) == []


async def test_relay_kernel_works_where_forwarding_is_disabled(test_hosts, specs, managers):
    """The noforward host's sshd says DisableForwarding yes: a forward kernel cannot start
    there; a relay kernel needs nothing but its session."""
    km = managers(specs(channels="relay", ssh_host_alias="noforward"))
    kc = await start(km)
    out, reply = await run_code(kc, "import os; print(os.getpid())")
    assert reply["status"] == "ok" and out.strip().isdigit()
    kc.stop_channels()
    await km.shutdown_kernel()


async def test_input_reaches_the_client_that_ran_the_cell(test_hosts, specs, managers):
    km = managers(specs(channels="relay"))
    kc = await start(km)
    # a second client, with its own session (its own peer): it must not get the prompt
    other = km.client(session=Session(key=km.session.key))
    other.start_channels()
    await other.wait_for_ready(timeout=30)
    msg_id = kc.execute("x = input('name? '); print('hello', x)", allow_stdin=True)
    req = await kc.get_stdin_msg(timeout=20)
    assert req["content"]["prompt"] == "name? "
    assert req["parent_header"]["msg_id"] == msg_id
    kc.input("relay")
    reply = await kc.get_shell_msg(timeout=20)
    assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok"
    assert await other.stdin_channel.msg_ready() is False
    out, _ = await run_code(other, "print(x)")
    assert out.strip() == "relay"
    other.stop_channels()
    kc.stop_channels()
    await km.shutdown_kernel()


async def test_interrupt_by_message_and_by_signal_and_restart(test_hosts, specs, managers):
    for mode in ("message", "signal"):
        km = managers(specs(f"relay-{mode}", channels="relay", interrupt_mode=mode))
        kc = await start(km)
        msg_id = kc.execute("import time; time.sleep(60)")
        await asyncio.sleep(1.0)
        t0 = time.monotonic()
        await km.interrupt_kernel()
        while True:
            reply = await kc.get_shell_msg(timeout=20)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        assert reply["content"]["status"] == "error", mode
        assert reply["content"]["ename"] == "KeyboardInterrupt", mode
        assert time.monotonic() - t0 < 10
        await run_code(kc, "y = 1")
        warm = km.provisioner.kernel._warm
        taken = []
        take = warm.take

        async def spy(master, taken=taken, take=take):
            taken.append(await take(master))
            return taken[-1]

        warm.take = spy
        await km.restart_kernel()
        # the restart's launcher was opened while the old kernel shut down (warm.py)
        assert len(taken) == 1 and taken[0] is not None, mode
        await kc.wait_for_ready(timeout=30)  # the same client, the same local ports
        out, reply = await run_code(kc, "print('y' in dir())")
        assert reply["status"] == "ok" and out.strip() == "False", mode
        kc.stop_channels()
        await km.shutdown_kernel()
    assert kernel_procs(test_hosts) == []


async def test_master_killed_mid_cell_every_line_once_in_order(test_hosts, specs, managers):
    """The ssh master dies while a cell prints: a new session takes the kernel up, the hub
    resumes from the last acknowledged message, nothing lost or repeated."""
    km = managers(specs("relay-master", channels="relay"))
    kc = await start(km)
    prov = km.provisioner
    pid = prov.remote["pid"]
    code = "import time\nfor i in range(40):\n    print(i, flush=True)\n    time.sleep(0.1)"
    msg_id = kc.execute(code)
    lines: list[str] = []
    await asyncio.sleep(1.0)
    await prov.master.exit()
    await wait_state(prov, 10, "reconnecting", "launching")
    reply = None
    while reply is None:
        for msg in await _iopub(kc, msg_id, 30):
            if msg["msg_type"] == "stream":
                lines += msg["content"]["text"].split()
        with contextlib.suppress(Exception):
            shell = await kc.get_shell_msg(timeout=0.2)
            if shell["parent_header"].get("msg_id") == msg_id:
                reply = shell
    assert reply["content"]["status"] == "ok"
    for msg in await _iopub(kc, msg_id, 1):  # what came with the reply
        if msg["msg_type"] == "stream":
            lines += msg["content"]["text"].split()
    assert lines == [str(i) for i in range(40)]
    assert prov.state == "connected" and prov.remote["pid"] == pid
    kc.stop_channels()
    await km.shutdown_kernel()


async def _iopub(kc, msg_id: str, timeout: float) -> list[dict]:
    """The messages of ``msg_id`` on iopub until it goes idle or ``timeout`` passes."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = await kc.get_iopub_msg(timeout=0.5)
        except queue.Empty:
            return got
        if msg["parent_header"].get("msg_id") == msg_id:
            got.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return got
    return got


async def test_a_relay_kernel_reads_a_mounted_local_directory(
    netns_hosts, specs, managers, tmp_path, mountpoint
):
    """Mounts do not care how the channels travel: the kernel reads a local file through
    its SSHFS mount, over the same master as its relay."""
    share = tmp_path / "share"
    share.mkdir()
    (share / "data.csv").write_text("a,b\n1,2\n")
    mount = {"local_path": str(share), "remote_path": f"~/{mountpoint}"}
    km = managers(specs("relay-mount", channels="relay", mount_local_on_remote=[mount]))
    kc = await start(km)
    path = f"/home/{netns_hosts.user}/{mountpoint}/data.csv"
    out, reply = await run_code(kc, f"print(open({path!r}).read().split()[1])")
    assert reply["status"] == "ok" and out.strip() == "1,2"
    assert km.provisioner.forwards == []  # no port forward on the master for this kernel
    kc.stop_channels()
    await km.shutdown_kernel()
