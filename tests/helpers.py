"""Helpers shared by the integration and resilience tests: which processes a test host runs
for this instance, how a test starts a kernel and runs code in it, how it waits.

They need the real test hosts (``tests/harness``), never a fake: the unit tier
(``tests/unit``) has no use for them.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from jupyter_client.ioloop import AsyncIOLoopKernelManager as AsyncKernelManager


def remote_procs(th, host="remote") -> list[str]:
    """Live processes started through this instance's sshd of ``host`` (they carry its
    SetEnv markers), apart from sshd itself.  The test hosts share this machine's pid
    namespace, so /proc sees them all, and other instances' processes are left out."""
    marks = {f"SPK_HOST={host}".encode(), f"SPK_STATE={th.state}".encode()}
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = set((d / "environ").read_bytes().split(b"\0"))
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (d / "status").read_text()
        except OSError:
            continue
        if marks <= env and "State:\tZ" not in state and not cmd.startswith("sshd"):
            found.append(f"{d.name} {cmd.strip()}")
    return found


def kernel_procs(th, host="remote") -> list[str]:
    return [
        p
        for p in remote_procs(th, host)
        if "ipykernel" in p or "sshpyk-launcher" in p or "-c import sys;n=int" in p
    ]


def local_ssh_procs(config: Path) -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"ssh") and str(config).encode() in cmd:
            found.append(b" ".join(cmd).decode())
    return found


async def start(km: AsyncKernelManager):
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=30)
    return kc


async def run_code(kc, code: str, timeout: float = 20) -> tuple[str, dict]:
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "execute_result":
            out.append(msg["content"]["data"]["text/plain"])

    reply = await kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    return "".join(out), reply["content"]


async def wait_until(pred, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pred():
            return True
        await asyncio.sleep(step)
    return False
