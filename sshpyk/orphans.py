"""Kernels whose Jupyter server is gone: find them, ask their hosts about them, shut them
down, reap a host.  Shared by ``sshpyk ps|reap`` and the REST API (re-attaching is the
server's: ``server/orphans.py``).
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from typing import Any

from . import registry
from .errors import SSHPykError
from .localfiles import check_ssh_config
from .localproc import gather_bounded
from .model import InvalidField
from .remote.protocol import messages, program_stdin, python_command
from .transport import Master, Target

TIMEOUT = 20.0
# a lease renewed within this many seconds means a monitor holds the kernel
ATTACHED_WITHIN = 10.0


def target_of(rec: registry.Record) -> Target:
    return Target.from_config(rec.config)


async def _remote(
    target: Target,
    prefix: str,
    params: dict,
    master: Master | None = None,
    command: str | None = None,
) -> dict:
    if target.config:  # a record names the config it was started with: it may have changed
        try:
            check_ssh_config("ssh_config", target.config)
        except InvalidField as e:
            raise SSHPykError(str(e), kind="bad_config") from None
    master = master or Master.for_target(target)
    await master.ensure(TIMEOUT)
    rc, out, err = await master.run(
        command or python_command(prefix), input=program_stdin("running", params), timeout=TIMEOUT
    )
    found = [m for m in messages(out) if "kernels" in m or "error" in m]
    if not found:
        raise SSHPykError(f"asking {target.alias} failed: {err.strip()[-300:] or rc}")
    if "error" in found[0]:
        raise SSHPykError(f"asking {target.alias} failed: {found[0]['error']}")
    return found[0]


def _refused(alias: str, result: dict) -> SSHPykError | None:
    """The error for a kernel the host would not act on (see remote/running.py)."""
    outcome = result.get("outcome")
    if outcome == "elsewhere":
        return SSHPykError(
            f"the kernel runs on {result.get('hostname')!r}, not on {result.get('host')!r} "
            f"where {alias!r} leads now (they share a home directory): nothing was done",
            kind="elsewhere",
        )
    if outcome == "unverified":
        return SSHPykError(
            "its run directory names no host (an older sshpyk made it): it is left to its lease",
            kind="unverified",
        )
    return None


async def signal_kernel(
    master: Master, prefix: str, remote: dict, signum: int, command: str | None = None
) -> None:
    """Signal a kernel's process group without its monitor, through the host's check that
    the group's leader is still that kernel (a bare ``kill`` would hit a reused pid).
    ``command``: where the kernel runs when not on the ssh host itself (a Slurm job)."""
    result = await _remote(
        master.target,
        prefix,
        {"action": "signal", "rundir": remote["rundir"], "signal": int(signum)},
        master,
        command,
    )
    refused = _refused(master.target.alias, result)
    if refused:
        raise refused
    if result.get("outcome") != "done":
        raise SSHPykError(f"the kernel is no longer running on {master.target.alias}", kind="gone")


async def host_kernels(target: Target, prefix: str) -> list[dict]:
    return (await _remote(target, prefix, {"action": "list"}))["kernels"]


async def probe(records: list[registry.Record]) -> list[dict[str, Any]]:
    """Each record with what its host says now: alive, attached, lease age (one remote
    call per host, all hosts at once)."""
    by_host: dict[tuple, list[registry.Record]] = defaultdict(list)
    for rec in records:
        by_host[(target_of(rec), rec.config["remote_python_prefix"])].append(rec)

    async def one(key) -> list[dict]:
        target, prefix = key
        try:
            remote = {os.path.basename(k["rundir"]): k for k in await host_kernels(target, prefix)}
            error = None
        except (SSHPykError, asyncio.TimeoutError, OSError) as e:
            remote, error = {}, str(e)
        out = []
        for rec in by_host[key]:
            k = remote.get(os.path.basename(rec.remote.get("rundir", "")))
            age = k.get("lease_age") if k else None
            elsewhere = bool(k) and k.get("where") == "elsewhere"
            out.append(
                {
                    **rec.public(),
                    "reachable": error is None,
                    "error": error,
                    "alive": bool(k and k.get("alive")),
                    "lease_age": age,
                    "attached": age is not None and age < ATTACHED_WITHIN,
                    # on another host that shares the home directory: not ours to judge
                    "on_host": k.get("hostname") if k else None,
                    "elsewhere": elsewhere,
                    # a Slurm kernel: its run dir is in the cluster's shared $HOME, its
                    # processes on a node (the login host sees it "elsewhere", by design)
                    "slurm_job": (k or rec.remote or {}).get("slurm_job"),
                }
            )
        return out

    results = await gather_bounded(one, list(by_host))
    merged = [entry for group in results for entry in group]
    merged.sort(key=lambda e: e["started_at"])
    return merged


async def shut_down(rec: registry.Record) -> None:
    """End the kernel on its host (TERM, then KILL) and forget it.  Refused (the record
    stays) when the kernel's run dir is another host's (see remote/running.py)."""
    target = target_of(rec)
    result = await _remote(
        target,
        rec.config["remote_python_prefix"],
        {"action": "kill", "rundir": rec.remote["rundir"]},
    )
    refused = _refused(target.alias, result)
    if refused:
        raise refused
    registry.remove(rec.kernel_id)


async def reap(target: Target, prefix: str, everything: bool = False) -> dict:
    """End the host's kernels no monitor holds (all of sshpyk's with ``everything``), clear
    what dead ones left, and forget the local records of kernels no longer there.  Run dirs
    of other hosts that share the home directory are left alone (``where: elsewhere`` in
    the result's ``kernels``, with their ``hostname``)."""
    result = await _remote(
        target, prefix, {"action": "reap", "all": everything, "stale_after": ATTACHED_WITHIN}
    )
    still = {os.path.basename(k["rundir"]) for k in result["kernels"] if k.get("alive")}
    records, _ = registry.all_records()
    for rec in records:
        if target_of(rec) == target and os.path.basename(rec.remote.get("rundir", "")) not in still:
            registry.remove(rec.kernel_id)
    return result
