"""A kernel on a Slurm compute node, side by side in one run with a kernel on the login host
itself (ours, relay channels), sshpyk 1.25 on the login host, and a plain local ipykernel.

On the real Slurm test cluster (``tests/harness/slurm.py``: login host ``hpc``, compute host
``node1`` reachable only from it), idle: the Slurm rows include the job's submission, the
queue (empty), the job's start and the kernel's reach through ``srun --overlap``.  Restart
stays in the job (no second submission).  Run as root:

    .venv/bin/python benchmarks/slurm_launch.py [--runs 5] [--idle-seconds 10]

Each implementation runs in ``lifecycle_worker.py`` (the lifecycle benchmark's worker).
Prints a table of medians; asserts nothing (noisy machines: targets live in the docs).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from kernel_lifecycle import OURS_PY, ensure_reference, measure, provisioned, write_spec  # noqa: E402

from harness import down, up  # noqa: E402
from harness.slurm import up as slurm_up  # noqa: E402

ROWS = [
    ("start", "start → kernel_info", 1000, "ms"),
    ("restart", "restart → kernel_info", 1000, "ms"),
    ("shutdown", "shutdown", 1000, "ms"),
    ("interrupt", "interrupt → reply", 1000, "ms"),
    ("execute", "execute('1+1') round trip", 1000, "ms"),
    ("burst_mb_s", "burst: 1000 x 100 KB display_data", 1, "MB/s"),
    ("burst_received", "burst: outputs received (of 1000)", 1, ""),
    ("idle_spawns_per_min", "idle ssh spawns / min", 1, ""),
    ("idle_cpu_local", "idle CPU, local side", 1, "% core"),
    ("stall", "worst loop stall, 3 s-slow remote python", 1000, "ms"),
]


def prepare(sh, tmp: Path) -> dict[str, tuple[Path, Path, Path | None]]:
    prefix = sh.remote_python_prefix
    # the worker's stall probe: a remote python 3 s slow to start (in the shared $HOME)
    slow = "/home/sshpyktest/slowpy"
    script = f'#!/bin/sh\nsleep 3\nexec {prefix}/bin/python "$@"\n'
    setup = (
        f"mkdir -p {slow}/bin && printf %s {shlex.quote(script)} > {slow}/bin/python "
        f"&& chmod +x {slow}/bin/python"
    )
    assert sh.run_login(setup).returncode == 0
    local = tmp / "local"
    write_spec(
        local,
        "bench",
        {
            "argv": [str(OURS_PY), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "local",
            "language": "python",
        },
    )
    base = {
        "ssh_host_alias": sh.login_alias,
        "ssh_config": str(sh.ssh_config),
        "remote_kernel_name": "python3",
        "remote_python_prefix": prefix,
        "shutdown_timeout": 10,
        "channels": "relay",
    }
    login = tmp / "login"
    write_spec(login, "bench", provisioned(base, "on the login host"))
    slow_base = {**base, "remote_python_prefix": slow}
    write_spec(login, "bench-slow", provisioned(slow_base, "slow"))
    slurm = tmp / "slurm"
    job = {"slurm": {"time": "30"}}
    write_spec(slurm, "bench", provisioned({**base, **job}, "Slurm job"))
    write_spec(slurm, "bench-slow", provisioned({**slow_base, **job}, "slow"))
    ref_cfg = tmp / "ref_ssh_config"
    ref_cfg.write_text(
        f"Host ref-hpc\n  HostName {sh.login_address}\n  ControlMaster auto\n"
        f"  ControlPath {tmp}/refcm-%C\n  ControlPersist 10m\n" + Path(sh.ssh_config).read_text()
    )
    ref_cfg.chmod(0o600)
    ref = tmp / "ref"
    rbase = {
        "ssh_host_alias": "ref-hpc",
        "ssh_config": str(ref_cfg),
        "remote_kernel_name": "python3",
        "shutdown_time": 10,
        "remote_python": f"{prefix}/bin/python",
    }
    write_spec(ref, "bench", provisioned(rbase, "ref"))
    rslow = {**rbase, "remote_python": f"{slow}/bin/python"}
    write_spec(ref, "bench-slow", provisioned(rslow, "ref"))
    return {
        "local ipykernel": (OURS_PY, local, None),
        "ours, login host": (OURS_PY, login, Path(sh.ssh_config)),
        "ours, Slurm job on node1": (OURS_PY, slurm, Path(sh.ssh_config)),
        "sshpyk 1.25, login host": (ensure_reference(), ref, ref_cfg),
    }


def table(results: dict[str, dict], runs: int) -> str:
    impls = list(results)
    lines = [
        f"Slurm launch (idle cluster), median of {runs} runs",
        "",
        "| metric | " + " | ".join(impls) + " |",
        "|---|" + "---:|" * len(impls),
    ]
    for key, label, scale, unit in ROWS:
        cells = []
        for i in impls:
            v = results[i].get(key)
            cells.append("n/a" if v is None else f"{v * scale:.1f}{' ' + unit if unit else ''}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle-seconds", type=float, default=10)
    ap.add_argument("--worker-timeout", type=float, default=1800)
    args = ap.parse_args()
    th = up("netns", prefix="spkbs")
    try:
        sh = slurm_up(th)
        with tempfile.TemporaryDirectory(prefix="sshpyk-bench-slurm-") as tmp:
            results = measure(
                prepare(sh, Path(tmp)), args.runs, args.idle_seconds, args.worker_timeout
            )
    finally:
        left = down(th.state)
    print(table(results, args.runs))
    print("\nraw:", json.dumps(results))
    if left:
        print(f"teardown left {left}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
