"""The relay channel path (``channels: relay``) on the real test hosts."""

from __future__ import annotations

import asyncio
import time

from helpers import kernel_procs, run_code, start
from jupyter_client.session import Session


async def test_relay_kernel_runs_code_and_shuts_down(test_hosts, specs, managers):
    km = managers(specs(channels="relay"))
    kc = await start(km)
    out, reply = await run_code(kc, "print(6 * 7)")
    assert reply["status"] == "ok" and out.strip() == "42"
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
        await km.restart_kernel()
        await kc.wait_for_ready(timeout=30)  # the same client, the same local ports
        out, reply = await run_code(kc, "print('y' in dir())")
        assert reply["status"] == "ok" and out.strip() == "False", mode
        kc.stop_channels()
        await km.shutdown_kernel()
    assert kernel_procs(test_hosts) == []
