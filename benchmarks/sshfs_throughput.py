"""SSHFS through sshpyk vs plain sftp/scp over the same link, in one run.

The remote test host reads and writes a local directory through sshpyk's mount (remote
`sshfs -o passive` <-> ssh master <-> sshpyk's confined SFTP server); next to it the same
data moved by OpenSSH's `sftp` and `scp` over the same master, and the same mount served
by OpenSSH's own (unconfined) sftp-server instead of sshpyk's, to show what confinement
costs.  Run as root:  .venv/bin/python benchmarks/sshfs_throughput.py [--runs 3] [--mb 100]
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import down, up
from sshpyk.mounts import Mount, Mounts
from sshpyk.transport import Master, Target

OPENSSH_SFTP_SERVER = "/usr/lib/openssh/sftp-server"


class OpenSSHMount(Mount):
    """The same mount, served by OpenSSH's sftp-server (start dir only, no confinement)."""

    def server_argv(self) -> list[str]:
        return [OPENSSH_SFTP_SERVER, "-d", self.local_path]


async def remote_ms(master: Master, script: str) -> float:
    """Run ``script`` on the host and return how long it took there, in ms."""
    wrapped = (
        f"s=$(date +%s%N); {script} >/dev/null 2>&1 || exit 9; "
        "e=$(date +%s%N); echo $(((e-s)/1000000))"
    )
    rc, out, err = await master.run(wrapped, timeout=600)
    if rc != 0:
        raise RuntimeError(f"{script}: rc {rc} {err}")
    return float(out.strip().splitlines()[-1])


def local_ms(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return (time.perf_counter() - t0) * 1000


async def via_mount(master, th, share: Path, mount_cls, mb: int, runs: int, tag: str) -> dict:
    point = f"~/bench-{tag}"
    mounts = Mounts(master, th.remote_python_prefix, None, [])
    mounts.items = [
        mount_cls(
            master, th.remote_python_prefix, None, {"local_path": str(share), "remote_path": point}
        )
    ]
    await mounts.start(timeout=30)
    # OpenSSH's server is not confined: the share is at its real path under the mount
    d = f"{point}{share}" if mount_cls is OpenSSHMount else point
    res: dict[str, list[float]] = {"read": [], "write": [], "list": []}
    try:
        for i in range(runs):
            res["read"].append(await remote_ms(master, f"cat {d}/big.bin"))
            res["write"].append(
                await remote_ms(
                    master, f"dd if=/dev/zero of={d}/w-{tag}.bin bs=1M count={mb} conv=fsync"
                )
            )
            res["list"].append(await remote_ms(master, f"ls -l {d}/many{i}"))
    finally:
        await mounts.stop()
        await master.run(f"rmdir {point}")
    return {k: statistics.median(v) for k, v in res.items()}


def via_openssh(th, master: Master, share: Path, mb: int, runs: int) -> dict:
    mux = [
        "-F",
        str(th.ssh_config),
        "-o",
        f"ControlPath={master.control_path}",
        "-o",
        "ControlMaster=no",
    ]
    res: dict[str, list[float]] = {
        "sftp get": [],
        "sftp put": [],
        "sftp ls": [],
        "scp get": [],
        "scp put": [],
    }
    big = share / "big.bin"
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            batch = Path(tmp) / "b"
            batch.write_text(f"put {big} bench-big.bin\n")
            res["sftp put"].append(local_ms(["sftp", *mux, "-q", "-b", str(batch), "remote"]))
            batch.write_text(f"get bench-big.bin {tmp}/got.bin\n")
            res["sftp get"].append(local_ms(["sftp", *mux, "-q", "-b", str(batch), "remote"]))
            batch.write_text(f"ls -l bench-many{i}\n")
            res["sftp ls"].append(local_ms(["sftp", *mux, "-q", "-b", str(batch), "remote"]))
            res["scp put"].append(local_ms(["scp", *mux, "-q", str(big), "remote:bench-big2.bin"]))
            res["scp get"].append(
                local_ms(["scp", *mux, "-q", "remote:bench-big2.bin", f"{tmp}/g2"])
            )
    return {k: statistics.median(v) for k, v in res.items()}


async def measure(th, mb: int, runs: int) -> tuple[dict, dict, dict]:
    master = Master.for_target(Target("remote", "ssh", str(th.ssh_config)))
    await master.ensure(20)
    with tempfile.TemporaryDirectory() as tmp:
        share = Path(tmp)
        (share / "big.bin").write_bytes(os.urandom(mb << 20))
        for i in range(runs):
            many = share / f"many{i}"
            many.mkdir()
            for j in range(1000):
                (many / f"f{j:04d}.txt").write_bytes(b"x" * 100)
        # the same small files on the remote, for sftp's listing
        await master.run(
            " && ".join(
                f"mkdir -p bench-many{i} && (cd bench-many{i} && "
                "for j in $(seq 1000); do echo x > f$j.txt; done)"
                for i in range(runs)
            ),
            timeout=300,
        )
        ours = await via_mount(master, th, share, Mount, mb, runs, "sshpyk")
        openssh_mount = await via_mount(master, th, share, OpenSSHMount, mb, runs, "openssh")
        plain = await asyncio.to_thread(via_openssh, th, master, share, mb, runs)
        await master.run("rm -rf bench-many* bench-big.bin bench-big2.bin")
    await master.exit()
    return ours, openssh_mount, plain


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mb", type=int, default=100)
    args = ap.parse_args()
    th = up("netns", prefix="spkb", index=3)
    try:
        ours, oss, plain = asyncio.run(measure(th, args.mb, args.runs))
    finally:
        left = down(th.state)
    mb = args.mb

    def rate(ms: float) -> str:
        return f"{mb / (ms / 1000):.0f} MB/s ({ms:.0f} ms)"

    print(
        f"\nSSHFS on the `remote` test host, {mb} MB file, 1000-file listing, "
        f"median of {args.runs}\n"
    )
    print(
        "| operation | sshpyk mount | same mount, OpenSSH sftp-server | plain sftp "
        "| plain scp | sshpyk / sftp |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| sequential read (remote reads local) | {rate(ours['read'])} | {rate(oss['read'])} "
        f"| {rate(plain['sftp get'])} | {rate(plain['scp get'])} "
        f"| {plain['sftp get'] / ours['read']:.0%} |"
    )
    print(
        f"| sequential write (remote writes local) | {rate(ours['write'])} | {rate(oss['write'])} "
        f"| {rate(plain['sftp put'])} | {rate(plain['scp put'])} "
        f"| {plain['sftp put'] / ours['write']:.0%} |"
    )
    print(
        f"| `ls -l` of 1000 files | {ours['list']:.0f} ms | {oss['list']:.0f} ms "
        f"| {plain['sftp ls']:.0f} ms | - | {plain['sftp ls'] / ours['list']:.0%} |"
    )
    print(
        "\nsftp/scp times are wall clock of the whole command over the warm master "
        "(a mux session costs ~10 ms); mount times are measured on the host around the command."
    )
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
