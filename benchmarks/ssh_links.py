"""What the test links cost: the floor every sshpyk benchmark is measured against.

Builds the real test hosts (``tests/harness``), then times, median of N runs, on the plain
veth link and with +50 ms RTT (NFQUEUE delay):

* a cold ``ssh remote true`` (new TCP + key exchange + auth), direct and via ProxyJump
* a ControlMaster until ready, and a warm ``ssh remote true`` through it
* ``-O forward -L`` / ``-O cancel -L`` on that master

Run as root:  ``.venv/bin/python benchmarks/ssh_links.py [--runs 7]``
Prints a table; asserts nothing (these machines are noisy; targets live in the docs).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Faults, down, up


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return (time.perf_counter() - t0) * 1000


def measure(th, runs: int) -> dict[str, float]:
    cp = th.state / "cm"
    cp.mkdir(mode=0o700, exist_ok=True)
    sock = f"{cp}/bench"
    mux = ("-o", f"ControlPath={sock}")
    res: dict[str, list[float]] = {
        k: []
        for k in (
            "cold ssh remote true",
            "cold ssh internal true (ProxyJump)",
            "master ready (-M -N -f)",
            "warm ssh remote true",
            "-O forward -L",
            "-O cancel -L",
        )
    }
    for _ in range(runs):
        res["cold ssh remote true"].append(timed(th.ssh_argv("remote", "true")))
        res["cold ssh internal true (ProxyJump)"].append(timed(th.ssh_argv("internal", "true")))
        res["master ready (-M -N -f)"].append(
            timed(
                th.ssh_argv("remote", options=("-M", "-N", "-f", *mux, "-o", "ControlPersist=30"))
            )
        )
        res["warm ssh remote true"].append(timed(th.ssh_argv("remote", "true", options=mux)))
        spec = ("-L", "127.0.0.1:47111:127.0.0.1:22")
        res["-O forward -L"].append(
            timed(th.ssh_argv("remote", options=(*mux, "-O", "forward", *spec)))
        )
        res["-O cancel -L"].append(
            timed(th.ssh_argv("remote", options=(*mux, "-O", "cancel", *spec)))
        )
        subprocess.run(th.ssh_argv("remote", options=(*mux, "-O", "exit")), capture_output=True)
    return {k: statistics.median(v) for k, v in res.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    th = up()
    try:
        plain = measure(th, args.runs)
        if th.mode == "netns":
            f = Faults(th)
            f.latency("remote", 50)
            f.latency("bastion", 50)
            try:
                slow = measure(th, args.runs)
            finally:
                f.clear()
        else:
            slow = {}
    finally:
        left = down(th.state)
    print(f"\nssh on the test links ({th.mode} hosts), median of {args.runs} runs, ms\n")
    print(f"| {'operation':<38} | {'plain link':>10} | {'+50 ms RTT':>10} |")
    print(f"|{'-' * 40}|{'-' * 12}|{'-' * 12}|")
    for k, v in plain.items():
        s = f"{slow[k]:10.1f}" if k in slow else f"{'n/a':>10}"
        print(f"| {k:<38} | {v:10.1f} | {s} |")
    if left:
        print(f"\nteardown left: {left}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
