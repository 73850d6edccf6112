"""Measure one kernelspec's lifecycle; run by ``kernel_lifecycle.py`` under the Python of the
implementation being measured (ours, the reference sshpyk 1.25, or a plain local kernel).

Prints one JSON object.  Uses only jupyter_client, so the same file serves every venv.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

from jupyter_client.ioloop import AsyncIOLoopKernelManager


def ssh_processes() -> set[int]:
    pids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv0 = (d / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if argv0.endswith(b"/ssh") or argv0 == b"ssh":
                pids.add(int(d.name))
    return pids


async def count_ssh_spawns(seconds: float) -> int:
    """New local ssh processes seen over ``seconds`` (sampled every 20 ms)."""
    seen = ssh_processes()
    new: set[int] = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.02)
        now = ssh_processes()
        new |= now - seen
        seen |= now
    return len(new)


class Ticker:
    """The longest gap between 5 ms ticks: how long the event loop was blocked."""

    def __init__(self):
        self.worst = 0.0
        self._stop = False

    async def run(self):
        last = time.perf_counter()
        while not self._stop:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - 0.005)
            last = now

    def stop(self):
        self._stop = True


async def ready(kc, timeout=60):
    await kc.wait_for_ready(timeout=timeout)


async def execute(kc, code, timeout=30):
    return await kc.execute_interactive(code, timeout=timeout, output_hook=lambda m: None)


async def one_run(kernel: str, idle_seconds: float) -> dict:
    res: dict = {}
    km = AsyncIOLoopKernelManager(kernel_name=kernel)
    t0 = time.perf_counter()
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await ready(kc)
    res["start"] = time.perf_counter() - t0

    await execute(kc, "1+1")
    samples = []
    for _ in range(20):
        t = time.perf_counter()
        await execute(kc, "1+1")
        samples.append(time.perf_counter() - t)
    res["execute"] = statistics.median(samples)

    msg_id = kc.execute("import time; time.sleep(100)")
    while True:
        m = await kc.get_iopub_msg(timeout=10)
        if m["msg_type"] == "execute_input" and m["parent_header"].get("msg_id") == msg_id:
            break
    await asyncio.sleep(0.3)
    t = time.perf_counter()
    await km.interrupt_kernel()
    while True:
        reply = await kc.get_shell_msg(timeout=15)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    res["interrupt"] = time.perf_counter() - t
    res["interrupt_ok"] = reply["content"].get("ename") == "KeyboardInterrupt"

    if idle_seconds:
        res["idle_spawns_per_min"] = await count_ssh_spawns(idle_seconds) * 60 / idle_seconds

    t = time.perf_counter()
    await km.restart_kernel()
    await ready(kc)
    res["restart"] = time.perf_counter() - t

    kc.stop_channels()
    t = time.perf_counter()
    await km.shutdown_kernel()
    res["shutdown"] = time.perf_counter() - t
    return res


async def stall_run(kernel: str) -> float:
    km = AsyncIOLoopKernelManager(kernel_name=kernel)
    ticker = Ticker()
    task = asyncio.create_task(ticker.run())
    try:
        await km.start_kernel()
    finally:
        ticker.stop()
        await task
    kc = km.client()
    kc.start_channels()
    await ready(kc)
    kc.stop_channels()
    await km.shutdown_kernel()
    return ticker.worst


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kernel")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle-seconds", type=float, default=0)
    ap.add_argument("--stall-kernel")
    args = ap.parse_args()
    runs = [
        await one_run(args.kernel, args.idle_seconds if i == 0 else 0) for i in range(args.runs)
    ]
    out = {
        k: statistics.median([r[k] for r in runs if k in r])
        for k in ("start", "execute", "interrupt", "restart", "shutdown")
    }
    out["interrupt_ok"] = all(r["interrupt_ok"] for r in runs)
    if args.idle_seconds:
        out["idle_spawns_per_min"] = runs[0]["idle_spawns_per_min"]
    if args.stall_kernel:
        out["stall"] = await stall_run(args.stall_kernel)
    out["pid"] = os.getpid()
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
