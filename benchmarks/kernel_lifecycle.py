"""Kernel lifecycle, side by side in one run: a plain local ipykernel, sshpyk (ours: forwards
with its default ipc transport and with tcp, and the relay channel path), and the reference
sshpyk 1.25 from PyPI (in its own venv), on the plain test link and with added round-trip
times (+50 and +150 ms by default).

Run as root (it builds the namespace test hosts and adds latency with NFQUEUE):

    .venv/bin/python benchmarks/kernel_lifecycle.py [--runs 5] [--idle-seconds 30] [--rtt 50,150]

The reference is installed once into ``.venv-ref`` (``pip install sshpyk==1.25``).  Each
implementation runs in a worker process under its own Python (``lifecycle_worker.py``).
Prints a table of medians; asserts nothing (noisy machines: targets live in the docs).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from harness import Faults, down, up  # noqa: E402

REF_VENV = ROOT / ".venv-ref"
OURS_PY = Path(sys.executable)


def ensure_reference() -> Path:
    py = REF_VENV / "bin" / "python"
    probe = [str(py), "-c", "import importlib.metadata as m; print(m.version('sshpyk'))"]
    found = subprocess.run(probe, capture_output=True, text=True) if py.exists() else None
    if found and found.stdout.strip() == "1.25":
        return py
    subprocess.run([sys.executable, "-m", "venv", str(REF_VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "sshpyk==1.25", "ipykernel"], check=True)
    return py


def slow_python(run, prefix: str) -> str:
    """A remote python 3 s slow to start (the stall probe's), made with ``run(command)``."""
    slow = "/home/sshpyktest/slowpy"
    script = f'#!/bin/sh\nsleep 3\nexec {prefix}/bin/python "$@"\n'
    setup = (
        f"mkdir -p {slow}/bin && printf %s {shlex.quote(script)} > {slow}/bin/python "
        f"&& chmod +x {slow}/bin/python"
    )
    assert run(setup).returncode == 0
    return slow


def reference_config(tmp: Path, alias: str, address: str, ssh_config: Path) -> Path:
    """The reference insists on ControlMaster auto under a dedicated alias."""
    ref_cfg = tmp / "ref_ssh_config"
    ref_cfg.write_text(
        f"Host {alias}\n  HostName {address}\n  ControlMaster auto\n"
        f"  ControlPath {tmp}/refcm-%C\n  ControlPersist 10m\n" + Path(ssh_config).read_text()
    )
    ref_cfg.chmod(0o600)
    return ref_cfg


def report(text: str, results: dict, left: list[str]) -> int:
    """Print the table and the raw numbers; fail when the teardown left something."""
    print(text)
    print("\nraw:", json.dumps(results))
    if left:
        print(f"teardown left {left}", file=sys.stderr)
        return 1
    return 0


def write_spec(root: Path, name: str, spec: dict) -> None:
    d = root / "kernels" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "kernel.json").write_text(json.dumps(spec))


def provisioned(config: dict, display: str) -> dict:
    return {
        "argv": [],
        "display_name": display,
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {
            "kernel_provisioner": {"provisioner_name": "sshpyk-provisioner", "config": config}
        },
    }


def prepare(th, tmp: Path) -> dict[str, tuple[Path, Path, Path | None]]:
    """Kernelspec dirs per implementation: name -> (python, JUPYTER_PATH, its ssh config)."""
    prefix = th.remote_python_prefix
    slow = slow_python(lambda cmd: th.ssh("remote", cmd), prefix)

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

    ours = tmp / "ours"
    base = {
        "ssh_host_alias": "remote",
        "ssh_config": str(th.ssh_config),
        "remote_kernel_name": "python3",
        "shutdown_timeout": 10,
    }
    write_spec(ours, "bench", provisioned({**base, "remote_python_prefix": prefix}, "ours"))
    write_spec(ours, "bench-slow", provisioned({**base, "remote_python_prefix": slow}, "ours"))
    # the same over tcp ports, the default before ipc (which other users of a host cannot read)
    ours_tcp = tmp / "ours-tcp"
    tcp = {**base, "transport": "tcp"}
    write_spec(ours_tcp, "bench", provisioned({**tcp, "remote_python_prefix": prefix}, "tcp"))
    write_spec(ours_tcp, "bench-slow", provisioned({**tcp, "remote_python_prefix": slow}, "tcp"))

    # the relay channel path (issue #15): the kernel's messages over its own ssh session
    relay = tmp / "ours-relay"
    rel = {**base, "channels": "relay"}
    write_spec(relay, "bench", provisioned({**rel, "remote_python_prefix": prefix}, "relay"))
    write_spec(relay, "bench-slow", provisioned({**rel, "remote_python_prefix": slow}, "relay"))

    # The reference insists on ControlMaster auto under a dedicated alias.
    ref_cfg = reference_config(tmp, "ref-remote", th["remote"].address, th.ssh_config)
    ref = tmp / "ref"
    rbase = {
        "ssh_host_alias": "ref-remote",
        "ssh_config": str(ref_cfg),
        "remote_kernel_name": "python3",
        "shutdown_time": 10,
    }
    write_spec(ref, "bench", provisioned({**rbase, "remote_python": f"{prefix}/bin/python"}, "ref"))
    write_spec(
        ref, "bench-slow", provisioned({**rbase, "remote_python": f"{slow}/bin/python"}, "ref")
    )
    return {
        "local ipykernel": (OURS_PY, local, None),
        "sshpyk (ours, ipc)": (OURS_PY, ours, th.ssh_config),
        "sshpyk (ours, tcp)": (OURS_PY, ours_tcp, th.ssh_config),
        "sshpyk (ours, relay)": (OURS_PY, relay, th.ssh_config),
        "sshpyk 1.25": (ensure_reference(), ref, ref_cfg),
    }


def measure(impls, runs: int, idle: float, timeout: float = 1800) -> dict[str, dict]:
    out = {}
    for label, (py, jpath, ssh_config) in impls.items():
        (jpath / "runtime").mkdir(mode=0o700, exist_ok=True)
        args = [str(py), str(HERE / "lifecycle_worker.py"), "bench", "--runs", str(runs)]
        if label != "local ipykernel":
            args += ["--idle-seconds", str(idle), "--stall-kernel", "bench-slow"]
        env = {
            **os.environ,
            "JUPYTER_PATH": str(jpath),
            "JUPYTER_RUNTIME_DIR": str(jpath / "runtime"),
            "PYTHONWARNINGS": "ignore",
            "SSHPYK_BENCH_SSH_CONFIG": str(ssh_config or ""),
        }
        try:
            proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            err = e.stderr.decode() if isinstance(e.stderr, bytes) else e.stderr or ""
            print(
                f"{label}: worker timed out after {timeout}s; its last phases:\n{err[-3000:]}",
                file=sys.stderr,
            )
            out[label] = {}
            continue
        if proc.returncode != 0:
            print(f"{label}: worker failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            out[label] = {}
            continue
        out[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


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
    ("idle_cpu_remote", "idle CPU, remote helper (kernel's parent)", 1, "% core"),
    ("helper_rss_mb", "remote helper memory (RSS)", 1, "MB"),
    ("stall", "worst loop stall, 3 s-slow remote python", 1000, "ms"),
]


def table(
    results: dict[str, dict[str, dict]],
    runs: int,
    rows=None,
    title: str = "Kernel lifecycle",
) -> str:
    """Medians per metric (``rows``, default ``ROWS``), a column per implementation and
    condition ({condition: {implementation: {metric: value}}})."""
    rows = ROWS if rows is None else rows
    conds = list(results)
    impls = list(next(iter(results.values())))
    head = "| metric | " + " | ".join(f"{i} ({c})" for c in conds for i in impls) + " |"
    lines = [
        f"{title}, median of {runs} runs",
        "",
        head,
        "|---|" + "---:|" * (len(conds) * len(impls)),
    ]
    for key, label, scale, unit in rows:
        cells = []
        for c in conds:
            for i in impls:
                v = results[c].get(i, {}).get(key)
                suffix = f" {unit}" if unit else ""
                cells.append("n/a" if v is None else f"{v * scale:.1f}{suffix}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle-seconds", type=float, default=30)
    ap.add_argument("--rtt", default="50,150", help="added round-trip times in ms, comma-separated")
    ap.add_argument("--worker-timeout", type=float, default=1800, help="seconds per implementation")
    ap.add_argument("--only", help="comma-separated labels to measure (default: all)")
    args = ap.parse_args()
    rtts = [int(x) for x in args.rtt.split(",") if x.strip()]
    th = up("netns")
    results: dict[str, dict] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="sshpyk-bench-") as tmp:
            impls = prepare(th, Path(tmp))
            if args.only:
                keep = [x.strip() for x in args.only.split(",")]
                impls = {k: v for k, v in impls.items() if any(x in k for x in keep)}
            results["plain link"] = measure(
                impls, args.runs, args.idle_seconds, args.worker_timeout
            )
            # each condition as it is done: a long run interrupted still says something
            print(json.dumps({"plain link": results["plain link"]}), file=sys.stderr, flush=True)
            faults = Faults(th)
            for rtt in rtts:
                faults.latency("remote", rtt)
                try:
                    # the local kernel has no link: measured once, on the plain one
                    remote = {k: v for k, v in impls.items() if k != "local ipykernel"}
                    cond = f"+{rtt} ms RTT"
                    results[cond] = measure(
                        remote, args.runs, args.idle_seconds, args.worker_timeout
                    )
                    print(json.dumps({cond: results[cond]}), file=sys.stderr, flush=True)
                finally:
                    faults.clear()
    finally:
        left = down(th.state)
    return report(table(results, args.runs), results, left)


if __name__ == "__main__":
    sys.exit(main())
