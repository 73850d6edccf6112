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
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from kernel_lifecycle import (  # noqa: E402
    OURS_PY,
    ensure_reference,
    measure,
    provisioned,
    reference_config,
    report,
    slow_python,
    table,
    write_spec,
)
from kernel_lifecycle import ROWS as LIFECYCLE_ROWS  # noqa: E402

from harness import down, up  # noqa: E402
from harness.slurm import up as slurm_up  # noqa: E402

# the lifecycle benchmark's rows, less the remote helper's (the same program here)
ROWS = [r for r in LIFECYCLE_ROWS if r[0] not in ("idle_cpu_remote", "helper_rss_mb")]


def prepare(sh, tmp: Path) -> dict[str, tuple[Path, Path, Path | None]]:
    prefix = sh.remote_python_prefix
    slow = slow_python(sh.run_login, prefix)  # the worker's stall probe
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
    ref_cfg = reference_config(tmp, "ref-hpc", sh.login_address, Path(sh.ssh_config))
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
    text = table({"idle cluster": results}, args.runs, ROWS, "Slurm launch")
    return report(text, results, left)


if __name__ == "__main__":
    sys.exit(main())
