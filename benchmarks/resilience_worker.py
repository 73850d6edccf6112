"""Run one resilience scenario against one kernelspec; run by ``resilience.py`` under the
Python of the implementation being measured (ours or the reference sshpyk 1.25).

Needs only jupyter_client, so the same file serves both venvs.  The worker cannot touch the
test hosts (the orchestrator owns the harness and its faults), so it asks for what it
needs with one line on stdout, ``@<event> <json>``, and blocks on one JSON line on stdin:
the orchestrator answers once the fault is in place, which keeps the timing here.  The
last stdout line is ``RESULT <json>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from importlib.metadata import entry_points

from jupyter_client.ioloop import AsyncIOLoopKernelManager
from jupyter_client.provisioning import KernelProvisionerFactory

CUT_SECONDS = 30.0
REPLY_TIMEOUT = 60.0
BUSY_CELL = (
    "import time\n"
    "for i in range(8):\n"
    "    print('tick', i, flush=True)\n"
    "    time.sleep(1)\n"
    "print('finished')"
)
BUSY_LINES = [f"tick {i}" for i in range(8)] + ["finished"]


async def ask(event: str, **data) -> dict:
    """Have the orchestrator do ``event``; returns its answer once it is done."""
    print(f"@{event} {json.dumps(data)}", flush=True)
    # in a thread: the event loop must keep running the kernel manager meanwhile
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        raise SystemExit("orchestrator went away")
    return json.loads(line)


async def start(kernel: str) -> tuple[AsyncIOLoopKernelManager, object]:
    # the kernel manager jupyter_server uses; start_kernel also starts its auto-restarter
    km = AsyncIOLoopKernelManager(kernel_name=kernel)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


async def run(kc, code: str, timeout: float = 30) -> tuple[str, dict]:
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = await kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    return "".join(out), reply["content"]


async def shutdown(km, kc, res: dict) -> None:
    """Shut down as the server would, then let the orchestrator count what is left."""
    kc.stop_channels()
    t = time.monotonic()
    try:
        await asyncio.wait_for(km.shutdown_kernel(), 120)
        res["shutdown_s"] = time.monotonic() - t
    except Exception as e:  # reported, not raised: the leftovers count matters more
        res["shutdown_error"] = f"{type(e).__name__}: {e}"[:200]
    await asyncio.sleep(1.0)  # sessions ending by themselves are not leftovers
    await ask("count")


def kernel_pids(snap: dict) -> list[int]:
    return sorted(snap["kernels"])


async def idle_cut(kernel: str) -> dict:
    res: dict = {}
    km, kc = await start(kernel)
    await run(kc, "x = 41")
    before = kernel_pids(await ask("snap"))
    await ask("cut")
    await asyncio.sleep(CUT_SECONDS)
    await ask("restore")
    t0 = time.monotonic()
    try:
        out, reply = await run(kc, "x += 1; print(x)", timeout=REPLY_TIMEOUT)
        res["recovery_s"] = time.monotonic() - t0
        res["state_kept"] = reply["status"] == "ok" and out.strip() == "42"
        res["output"] = out.strip()[:80]
    except Exception as e:
        res["error"] = f"no reply within {REPLY_TIMEOUT:g} s after the restore ({type(e).__name__})"
    after = kernel_pids(await ask("snap"))
    res["kernel_kept"] = bool(before) and before == after
    res["kernel_pids"] = [before, after]
    await shutdown(km, kc, res)
    return res


async def busy_cut(kernel: str) -> dict:
    res: dict = {}
    km, kc = await start(kernel)
    before = kernel_pids(await ask("snap"))
    msg_id = kc.execute(BUSY_CELL)
    await asyncio.sleep(1.5)  # the cell runs and prints when the link goes
    await ask("cut")
    await asyncio.sleep(CUT_SECONDS)
    await ask("restore")
    t0 = time.monotonic()
    deadline = t0 + REPLY_TIMEOUT
    while True:
        left = deadline - time.monotonic()
        try:
            reply = await kc.get_shell_msg(timeout=max(left, 0.01))
        except Exception:
            res["error"] = f"no execute_reply within {REPLY_TIMEOUT:g} s after the restore"
            break
        if reply["parent_header"].get("msg_id") == msg_id:
            res["recovery_s"] = time.monotonic() - t0
            res["reply_status"] = reply["content"]["status"]
            break
    # the printed lines, in order, until the cell's idle status (or silence)
    text = ""
    while True:
        try:
            msg = await kc.get_iopub_msg(timeout=5)
        except Exception:
            break
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            text += msg["content"]["text"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    lines = text.split("\n")[: len(BUSY_LINES)]
    res["lines_received"] = sum(1 for a, b in zip(lines, BUSY_LINES, strict=False) if a == b)
    res["all_lines"] = lines == BUSY_LINES
    after = kernel_pids(await ask("snap"))
    res["kernel_kept"] = bool(before) and before == after
    res["kernel_pids"] = [before, after]
    await shutdown(km, kc, res)
    return res


async def kernel_kill9(kernel: str) -> dict:
    res: dict = {}
    km, kc = await start(kernel)
    await run(kc, "x = 41")
    events: list[tuple[str, float]] = []
    noticed = asyncio.Event()

    def on(kind: str):
        def callback():
            events.append((kind, time.monotonic()))
            noticed.set()

        return callback

    # the restarter is what notices in jupyter_server; polling is_alive() here too would
    # not be neutral (1.25's poll reports a dead kernel only once)
    km.add_restart_callback(on("restart"), "restart")
    km.add_restart_callback(on("dead"), "dead")
    old_ready = km.ready
    killed = (await ask("kill_kernel"))["killed"]
    t0 = time.monotonic()
    res["killed"] = killed
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(noticed.wait(), REPLY_TIMEOUT)
    if not events:
        res["error"] = f"not noticed within {REPLY_TIMEOUT:g} s"
    else:
        kind, when = events[0]
        res["noticed_s"] = when - t0
        res["noticed_by"] = kind
    if events and events[0][0] == "restart":
        # the restart is done when the manager has a new, resolved ready future
        while time.monotonic() - t0 < 2 * REPLY_TIMEOUT:
            if km.ready is not old_ready and km.ready.done():
                break
            await asyncio.sleep(0.05)
        kc.stop_channels()
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=30)
            out, reply = await run(kc, "print(6 * 7)")
            res["restart_works"] = reply["status"] == "ok" and out.strip() == "42"
            res["recovery_s"] = time.monotonic() - t0
            res["state_kept"] = (await run(kc, "print('x' in globals())"))[0].strip() == "True"
        except Exception as e:
            res["restart_works"] = False
            res["restart_error"] = f"{type(e).__name__}: {e}"[:200]
    res["kernel_pids_after"] = kernel_pids(await ask("snap"))
    await shutdown(km, kc, res)
    return res


async def server_killed(kernel: str) -> dict:
    """Start a kernel, then have the orchestrator kill -9 this process (the 'server')."""
    _km, kc = await start(kernel)  # kept referenced until the kill
    await run(kc, "x = 41")
    await ask("snap")
    await ask("kill_me")  # never answered
    await asyncio.sleep(3600)
    return {}


async def attach_existing(kernel: str) -> dict:
    """1.25 only: connect to a running kernel through its persistent file (the kernelspec
    sets ``existing``); the state tells whether it is the same kernel."""
    res: dict = {}
    km, kc = await start(kernel)
    out, reply = await run(kc, "print(x)")
    res["attached"] = reply["status"] == "ok" and out.strip() == "41"
    kc.stop_channels()
    # now=True: a graceful shutdown is intercepted ('existing' implies persistent) and then
    # waits out the shutdown time; the kill ends the kernel (its pid is in the file)
    await asyncio.wait_for(km.shutdown_kernel(now=True), 60)
    return res


class Ticker:
    """The longest gap between 10 ms ticks beyond 10 ms: how long the loop was blocked."""

    def __init__(self):
        self.worst = 0.0
        self.running = True

    async def run(self):
        last = time.perf_counter()
        while self.running:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - 0.01)
            last = now


def warm_up(km) -> None:
    """Pay the one-time costs a running server paid long ago (the provisioner factory, the
    provisioner's import), so that the ticker sees what every launch costs."""
    name = km.kernel_spec.metadata["kernel_provisioner"]["provisioner_name"]
    KernelProvisionerFactory.instance()
    next(iter(entry_points(group=KernelProvisionerFactory.GROUP_NAME, name=name))).load()


async def launch_fails(kernel: str, cut: bool) -> dict:
    res: dict = {}
    if cut:
        await ask("cut")
    km = AsyncIOLoopKernelManager(kernel_name=kernel)
    warm_up(km)
    ticker = Ticker()
    task = asyncio.create_task(ticker.run())
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(km.start_kernel(), 120)
        res["error"] = "start_kernel did not raise"
    except Exception as e:
        res["raised_s"] = time.monotonic() - t0
        res["error_text"] = " ".join(f"{type(e).__name__}: {e}".split())[:80]
    finally:
        ticker.running = False
        await task
    res["max_stall_s"] = ticker.worst
    if cut:
        await ask("restore")
    if km.has_kernel:
        await shutdown(km, km.client(), res)
    else:
        await asyncio.sleep(1.0)
        await ask("count")
    return res


SCENARIOS = {
    "idle_cut": idle_cut,
    "busy_cut": busy_cut,
    "kernel_kill9": kernel_kill9,
    "server_killed": server_killed,
    "attach_existing": attach_existing,
    "sshd_down": lambda k: launch_fails(k, cut=False),
    "link_down": lambda k: launch_fails(k, cut=True),
}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("kernel")
    args = ap.parse_args()
    res = await SCENARIOS[args.scenario](args.kernel)
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
