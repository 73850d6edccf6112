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
import sys
import time
from pathlib import Path
from queue import Empty

from jupyter_client.ioloop import AsyncIOLoopKernelManager

# the ssh config of the implementation measured: other ssh processes on this machine (other
# test runs) are not its own
SSH_CONFIG = os.environ.get("SSHPYK_BENCH_SSH_CONFIG", "").encode()


def ssh_processes() -> set[int]:
    pids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (argv[0].endswith(b"/ssh") or argv[0] == b"ssh") and SSH_CONFIG in argv:
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


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids) -> float:
    """User + system CPU time of ``pids`` (the test hosts share this machine's /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


async def idle_cpu(seconds: float, local: set[int], remote: set[int]) -> tuple[float, float]:
    """% of one core used over ``seconds`` by the ``local`` and the ``remote`` processes."""
    t0, l0, r0 = time.monotonic(), cpu_seconds(local), cpu_seconds(remote)
    await asyncio.sleep(seconds)
    wall = time.monotonic() - t0
    return (cpu_seconds(local) - l0) / wall * 100, (cpu_seconds(remote) - r0) / wall * 100


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


BURST, BURST_SIZE = 1000, 100_000  # display_data messages of 100 KB: 100 MB of output
# A burst lasts half a second on a plain link, so one scheduler hiccup on this shared
# machine moved a run's figure by a tenth: each run measures three, and the row is the
# median of them all.
BURSTS_PER_RUN = 3


async def burst(kc) -> tuple[float, int]:
    """A cell that displays BURST outputs of BURST_SIZE bytes: MB/s received, from execute
    to the last output, and how many arrived.  Not "until idle": a kernel's PUB drops what a
    slow path cannot take (its high-water mark), the idle status included, so the end is
    the execute_reply (a ROUTER's) and then 3 s without any more output."""
    code = (
        "from IPython.display import display\n"
        f"for _ in range({BURST}): display({{'text/plain': 'x' * {BURST_SIZE}}}, raw=True)"
    )
    t = time.perf_counter()
    msg_id = kc.execute(code)
    seen, last, replied = 0, t, False
    deadline = t + 300
    while time.perf_counter() < deadline:
        try:
            m = await kc.get_iopub_msg(timeout=3)
        except Empty:
            replied = replied or await _replied(kc, msg_id)
            if replied:
                break
            continue
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "display_data":
            seen, last = seen + 1, time.perf_counter()
        elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
    return seen * BURST_SIZE / max(last - t, 1e-6) / 1e6, seen


async def _replied(kc, msg_id: str) -> bool:
    try:
        reply = await kc.get_shell_msg(timeout=0.001)
    except Empty:
        return False
    return reply["parent_header"].get("msg_id") == msg_id


def phase(name: str) -> None:
    """Where the run is, on stderr (shown when a worker fails or hangs)."""
    print(f"{time.strftime('%H:%M:%S')} {name}", file=sys.stderr, flush=True)


async def one_run(kernel: str, idle_seconds: float) -> dict:
    res: dict = {}
    phase("start")
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
    phase("burst")
    bursts = [await burst(kc) for _ in range(BURSTS_PER_RUN)]
    res["bursts_mb_s"] = [mbs for mbs, _ in bursts]
    res["burst_received"] = min(seen for _, seen in bursts)
    phase("interrupt")

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
        # The kernel's parent is the remote side's helper (the nanny, and for channels: relay
        # the relay's hub); the local side is this process and the ssh clients it runs.
        pids: list[str] = []

        def hook(m):
            if m["msg_type"] == "stream":
                pids.extend(m["content"]["text"].split())

        code = "import os; print(os.getpid(), os.getppid())"
        await kc.execute_interactive(code, output_hook=hook)
        helper = int(pids[1])
        local = {os.getpid(), *ssh_processes()}
        spawns = await count_ssh_spawns(idle_seconds)
        res["idle_spawns_per_min"] = spawns * 60 / idle_seconds
        # after, not during, the spawn count: its scan of /proc every 20 ms would be counted
        cpu = await idle_cpu(idle_seconds / 2, local, {helper})
        res["idle_cpu_local"], res["idle_cpu_remote"] = cpu
        res["helper_rss_mb"] = rss_mb(helper)

    phase("restart")
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


IDLE_KEYS = ("idle_spawns_per_min", "idle_cpu_local", "idle_cpu_remote", "helper_rss_mb")


def summarize(runs: list[dict]) -> dict:
    """One implementation's row values from its runs: medians (the bursts' over every burst
    of every run), the fewest outputs received, the idle figures of the run that had them."""
    out: dict = {
        k: statistics.median([r[k] for r in runs if k in r])
        for k in ("start", "execute", "interrupt", "restart", "shutdown")
    }
    out["burst_mb_s"] = statistics.median(x for r in runs for x in r["bursts_mb_s"])
    out["burst_received"] = min(r["burst_received"] for r in runs)
    out["interrupt_ok"] = all(r["interrupt_ok"] for r in runs)
    idle = [r for r in runs if IDLE_KEYS[0] in r]
    if idle:
        out.update({key: idle[0][key] for key in IDLE_KEYS})
    return out


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
    out = summarize(runs)
    if args.stall_kernel:
        out["stall"] = await stall_run(args.stall_kernel)
    out["pid"] = os.getpid()
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
