"""`sshpyk list` with checks for 20 kernels on the 3 test hosts: concurrent (what sshpyk
does) vs the same checks one kernel after another, each from a cold master.

Run as root:  .venv/bin/python benchmarks/list_checks.py [--runs 3]
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import down, up
from sshpyk.checks import Checker, check_many
from sshpyk.transport import Master, Target


def models(th) -> list[dict]:
    hosts = ["remote", "bastion", "internal"]
    return [
        {
            "kernel_name": f"k{i}",
            "ssh_host_alias": hosts[i % 3],
            "ssh_config": str(th.ssh_config),
            "ssh": None,
            "remote_python_prefix": th.remote_python_prefix,
            "remote_kernel_name": "python3",
            "mount_local_on_remote": [],
        }
        for i in range(20)
    ]


async def cold(th) -> None:
    for alias in ("remote", "bastion", "internal"):
        await Master.for_target(Target(alias, "ssh", str(th.ssh_config))).exit()


async def concurrent(ms) -> float:
    t0 = time.perf_counter()
    res = await check_many(ms)
    assert all(c.status in ("ok", "warn") for cs in res.values() for c in cs), res
    return time.perf_counter() - t0


async def sequential(th, ms) -> float:
    t0 = time.perf_counter()
    for m in ms:
        await cold(th)  # what a tool without a shared connection pays per kernel
        await Checker().check(m)
    return time.perf_counter() - t0


async def measure(th, runs: int) -> dict[str, float]:
    ms = models(th)
    out: dict[str, list[float]] = {
        "concurrent, cold masters": [],
        "concurrent, warm masters": [],
        "one after another, own connection each": [],
    }
    for _ in range(runs):
        await cold(th)
        out["concurrent, cold masters"].append(await concurrent(ms))
        out["concurrent, warm masters"].append(await concurrent(ms))
        out["one after another, own connection each"].append(await sequential(th, ms))
    await cold(th)
    return {k: statistics.median(v) for k, v in out.items()}


def cli_list(th) -> float:
    """The real command end to end, 20 kernelspecs in a private data dir."""
    with tempfile.TemporaryDirectory() as data:
        env = {"JUPYTER_DATA_DIR": data, "JUPYTER_PATH": data, "PATH": "/usr/bin:/bin"}
        sshpyk = str(Path(sys.executable).parent / "sshpyk")
        for m in models(th):
            subprocess.run(
                [
                    sshpyk,
                    "add",
                    "--kernel-name",
                    m["kernel_name"],
                    "--display-name",
                    m["kernel_name"],
                    "--language",
                    "python",
                    "--ssh-host-alias",
                    m["ssh_host_alias"],
                    "--ssh-config",
                    m["ssh_config"],
                    "--remote-python-prefix",
                    m["remote_python_prefix"],
                    "--remote-kernel-name",
                    "python3",
                ],
                check=True,
                env=env,
            )
        t0 = time.perf_counter()
        subprocess.run([sshpyk, "list", "--remote"], check=True, env=env, capture_output=True)
        return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    th = up("netns")
    try:
        res = asyncio.run(measure(th, args.runs))
        asyncio.run(cold(th))
        res["`sshpyk list --remote` (CLI, cold masters)"] = cli_list(th)
    finally:
        left = down(th.state)
    print(f"\nChecks of 20 SSH kernels on 3 test hosts (1 via ProxyJump), median of {args.runs}\n")
    print("| how | seconds |\n|---|---:|")
    for k, v in res.items():
        print(f"| {k} | {v:.2f} |")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
