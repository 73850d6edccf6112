"""Health checks of SSH kernels: is everything in place for a launch to work?

All kernels are checked concurrently.  Work is shared: one ``ssh -G`` and one connection
(the host's master) per host, one remote inspection per (host, prefix), so 20 kernels on 3
hosts take about as long as the slowest host.  Each check reports as soon as it is known
(``on_result``), which the REST API streams to the Lab UI.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import SSHPykError, config_error_summary
from .model import schema
from .remote.protocol import MARK, messages, program_stdin, python_command
from .sshconfig import parse_ssh_g
from .transport import (
    SSH_AT_ONCE,
    Master,
    Target,
    channel_answers,
    free_local_port,
    reap,
    run_local,
)

OK, WARN, FAIL, SKIPPED = "ok", "warn", "fail", "skipped"
CHECK_IDS = (
    "ssh_client",
    "ssh_config",
    "host_alias",
    "connection",
    "remote_system",
    "remote_python",
    "jupyter_client",
    "remote_kernel",
    "port_forwarding",
    "sshfs",
)


# The remote end of the port forwarding check: one listener of the kernel's transport (a
# TCP port on 127.0.0.1, or a unix socket in a private directory) that greets the first
# connection with 0xFF, as a ZeroMQ peer does.  Sent over stdin like the other programs.
@dataclass
class Check:
    id: str
    title: str
    status: str
    value: str = ""
    hint: str = ""
    data: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def _is_file(path: str) -> bool:
    return Path(path).expanduser().is_file()  # a local stat: too quick to be worth a thread


def _is_dir(path: str) -> bool:
    return Path(path).expanduser().is_dir()


def target_of(model: dict) -> Target:
    return Target(model["ssh_host_alias"], model.get("ssh") or "ssh", model.get("ssh_config"))


class Checker:
    """Runs checks, sharing every piece of work that several kernels need."""

    def __init__(self, timeout: float = 20, deadline: float | None = None):
        self._timeout = timeout
        # loop time by which all work must have ended (the CLI's time per host), so work
        # given up on is killed by its own timeout, never left running
        self.deadline = deadline
        self._tasks: dict[tuple, asyncio.Task] = {}
        self._gate = asyncio.Semaphore(SSH_AT_ONCE)  # pieces of work (ssh) at once

    @property
    def timeout(self) -> float:
        """The time of the next piece of work: ``timeout``, and never past ``deadline``."""
        if self.deadline is None:
            return self._timeout
        left = self.deadline - asyncio.get_running_loop().time()
        return max(0.1, min(self._timeout, left))

    def _once(self, key: tuple, factory) -> asyncio.Task:
        # no piece of work waits on another, so the gate can never deadlock
        async def gated():
            async with self._gate:
                return await factory()

        if key not in self._tasks:
            self._tasks[key] = asyncio.ensure_future(gated())
        return self._tasks[key]

    async def ssh_version(self, ssh: str):
        return await self._once(("ssh-V", ssh), lambda: run_local([ssh, "-V"], 5))

    async def resolve(self, target: Target):
        argv = [*target.base_argv(), "-G", "--", target.alias]
        return await self._once(("G", target), lambda: run_local(argv, 10))

    async def connect(self, target: Target) -> float:
        async def go():
            t0 = time.monotonic()
            await Master.for_target(target).ensure(self.timeout)
            return time.monotonic() - t0

        return await self._once(("connect", target), go)

    async def inspect(
        self, target: Target, prefix: str, sshfs: str | None, mount_points: tuple[str, ...] = ()
    ) -> dict:
        async def go():
            master = Master.for_target(target)
            params = {"sshfs": sshfs, "mount_points": list(mount_points)}
            rc, out, err = await master.run(
                python_command(prefix),
                input=program_stdin("inspect", params),
                timeout=self.timeout,
            )
            found = [m for m in messages(out) if "shell_pid" not in m]
            if not found:
                raise SSHPykError(
                    f"remote inspection failed: {err.strip()[-300:] or rc}", kind="inspect_failed"
                )
            return found[0]

        return await self._once(("inspect", target, prefix, sshfs, mount_points), go)

    async def forwarding(self, target: Target, prefix: str, transport: str) -> bool | None:
        """Whether the host opens a forwarded channel of ``transport`` (tcp: a TCP port,
        ipc: a unix socket) to a listener on it: True, False (refused), None (no verdict)."""

        async def go():
            master = Master.for_target(target)
            params = {"transport": transport, "timeout": self.timeout}
            proc = await master.open_session(python_command(prefix))
            spec = None
            try:
                proc.stdin.write(program_stdin("forward_probe", params))
                await proc.stdin.drain()
                where = await asyncio.wait_for(_probe_address(proc), self.timeout)
                remote = where if transport == "ipc" else f"127.0.0.1:{where}"
                spec = f"127.0.0.1:{free_local_port()}:{remote}"
                ok, err = await master.forward([spec])
                if not ok:
                    raise SSHPykError(f"ssh -O forward failed: {err}", kind="forward_failed")
                return await channel_answers(int(spec.split(":")[1]), min(self.timeout, 10))
            finally:
                if spec:
                    await master.cancel([spec])
                await reap(proc, grace=0.5)

        return await self._once(("forward", target, prefix, transport), go)

    async def check(
        self, model: dict, on_result: Callable[[Check], None] | None = None
    ) -> list[Check]:
        results: list[Check] = []

        def report(c: Check) -> None:
            results.append(c)
            if on_result:
                on_result(c)

        def skip_rest(after: str, why: str) -> None:
            for cid in CHECK_IDS[CHECK_IDS.index(after) + 1 :]:
                if cid == "sshfs" and not model.get("mount_local_on_remote"):
                    continue
                report(Check(cid, TITLES[cid], SKIPPED, hint=why))

        target = target_of(model)
        ssh = target.ssh
        # -- local ssh client
        path = shutil.which(ssh)
        rc, out, err = await self.ssh_version(ssh) if path else (127, "", "")
        if not path or rc != 0:
            report(
                Check(
                    "ssh_client",
                    TITLES["ssh_client"],
                    FAIL,
                    ssh,
                    "install the OpenSSH client (Debian: apt-get install openssh-client)",
                )
            )
            skip_rest("ssh_client", "no ssh client")
            return results
        report(Check("ssh_client", TITLES["ssh_client"], OK, f"{path} ({(err or out).strip()})"))
        # -- config file
        cfg = model.get("ssh_config")
        if cfg:
            if _is_file(cfg):
                report(Check("ssh_config", TITLES["ssh_config"], OK, cfg))
            else:
                report(
                    Check(
                        "ssh_config",
                        TITLES["ssh_config"],
                        FAIL,
                        cfg,
                        "the ssh config file does not exist",
                    )
                )
                skip_rest("ssh_config", "no ssh config file")
                return results
        else:
            report(Check("ssh_config", TITLES["ssh_config"], OK, "ssh's default (~/.ssh/config)"))
        # -- host alias
        rc, out, err = await self.resolve(target)
        if rc != 0:
            report(
                Check(
                    "host_alias",
                    TITLES["host_alias"],
                    FAIL,
                    target.alias,
                    config_error_summary(err, rc),  # never ssh's words: they quote the file
                )
            )
            skip_rest("host_alias", "the host alias does not resolve")
            return results
        report(_alias_check(target.alias, out))
        # -- connection (BatchMode, through the shared master)
        try:
            took = await self.connect(target)
        except SSHPykError as e:
            report(Check("connection", TITLES["connection"], FAIL, e.kind, str(e)))
            skip_rest("connection", "no connection")
            return results
        report(Check("connection", TITLES["connection"], OK, f"{took * 1000:.0f} ms"))
        # -- the remote environment, one inspection for every kernel that shares it
        prefix = model["remote_python_prefix"]
        try:
            points = tuple(m["remote_path"] for m in model.get("mount_local_on_remote") or [])
            info = await self.inspect(target, prefix, model.get("remote_sshfs"), points)
        except (SSHPykError, asyncio.TimeoutError) as e:
            report(Check("remote_system", TITLES["remote_system"], FAIL, "", str(e)))
            skip_rest("remote_system", "remote inspection failed")
            return results
        if info.get("error") in ("prefix_missing", "python_missing"):
            report(
                Check(
                    "remote_system",
                    TITLES["remote_system"],
                    SKIPPED,
                    hint="needs the remote python",
                )
            )
            what = (
                "does not exist"
                if info["error"] == "prefix_missing"
                else ("has no executable bin/python")
            )
            report(
                Check(
                    "remote_python",
                    TITLES["remote_python"],
                    FAIL,
                    prefix,
                    f"{prefix} {what} on {target.alias}",
                )
            )
            skip_rest("remote_python", "no remote python")
            return results
        report(Check("remote_system", TITLES["remote_system"], OK, info["system"]))
        report(
            Check(
                "remote_python",
                TITLES["remote_python"],
                OK,
                f"{prefix}/bin/python {info['python']}",
            )
        )
        if not info.get("jupyter_client"):
            report(
                Check(
                    "jupyter_client",
                    TITLES["jupyter_client"],
                    FAIL,
                    "missing",
                    f"pip install jupyter_client in {prefix} on {target.alias}",
                )
            )
            skip_rest("jupyter_client", "jupyter_client missing")
            return results
        report(Check("jupyter_client", TITLES["jupyter_client"], OK, info["jupyter_client"]))
        specs = info.get("kernelspecs") or {}
        spec = specs.get(model["remote_kernel_name"])
        if spec is None or "error" in spec:
            hint = (spec or {}).get("error") or (f"available: {', '.join(sorted(specs)) or 'none'}")
            report(
                Check(
                    "remote_kernel",
                    TITLES["remote_kernel"],
                    FAIL,
                    model["remote_kernel_name"],
                    hint,
                )
            )
        else:
            report(
                Check(
                    "remote_kernel",
                    TITLES["remote_kernel"],
                    OK,
                    shlex.join(spec["argv"]),
                    data={
                        "interrupt_mode": spec["interrupt_mode"],
                        "display_name": spec["display_name"],
                        "language": spec["language"],
                    },
                )
            )
        # -- port forwarding: every channel of the kernel is a forward of the master
        transport = model.get("transport") or schema()["properties"]["transport"]["default"]
        report(await self._forwarding_check(target, prefix, transport))
        # -- SSHFS pieces, only when mounts are configured
        mounts = model.get("mount_local_on_remote") or []
        if mounts:
            missing = [m["local_path"] for m in mounts if not _is_dir(m["local_path"])]
            if not info.get("sshfs"):
                report(
                    Check(
                        "sshfs",
                        TITLES["sshfs"],
                        FAIL,
                        "sshfs missing",
                        f"install sshfs on {target.alias} (Debian: apt-get install sshfs)",
                    )
                )
            elif missing:
                report(
                    Check(
                        "sshfs",
                        TITLES["sshfs"],
                        FAIL,
                        ", ".join(missing),
                        "local directories to mount do not exist",
                    )
                )
            elif bad := {
                m["remote_path"]: problem
                for m in mounts
                if (problem := (info.get("mount_points") or {}).get(m["remote_path"]))
            }:
                report(
                    Check(
                        "sshfs",
                        TITLES["sshfs"],
                        FAIL,
                        "; ".join(f"{path}: {why}" for path, why in bad.items()),
                        "remote mount points must be empty directories you can write to "
                        "(missing ones are created)",
                    )
                )
            else:
                report(Check("sshfs", TITLES["sshfs"], OK, info["sshfs"]))
        return results

    async def _forwarding_check(self, target: Target, prefix: str, transport: str) -> Check:
        title = TITLES["port_forwarding"]
        kind = "stream-local (unix socket)" if transport == "ipc" else "TCP"
        try:
            works = await self.forwarding(target, prefix, transport)
        except (SSHPykError, asyncio.TimeoutError, OSError) as e:
            return Check("port_forwarding", title, FAIL, transport, f"could not test it: {e}")
        if works:
            return Check("port_forwarding", title, OK, f"{kind} forwarding works")
        if works is None:
            return Check(
                "port_forwarding", title, WARN, transport, "no answer through a forward in time"
            )
        option = "AllowStreamLocalForwarding" if transport == "ipc" else "AllowTcpForwarding"
        return Check(
            "port_forwarding",
            title,
            FAIL,
            f"{kind} forwarding refused",
            f"the sshd of {target.alias} forbids {kind} port forwarding ({option} no): "
            "sshpyk reaches the kernel only through forwards; ask its admin to allow it",
        )


async def _probe_address(proc) -> str | int:
    while True:
        line = await proc.stdout.readline()
        if not line:
            err = (await proc.stderr.read()).decode(errors="replace")
            raise SSHPykError(f"the forwarding probe ended: {err.strip()[-300:] or 'no output'}")
        text = line.decode(errors="replace")
        if text.startswith(MARK) and "probe" in (msg := json.loads(text[len(MARK) :])):
            return msg["probe"]


TITLES = {
    "ssh_client": "Local ssh client",
    "ssh_config": "SSH config file",
    "host_alias": "Host alias",
    "connection": "Connection (BatchMode)",
    "remote_system": "Remote system",
    "remote_python": "Remote Python",
    "jupyter_client": "Remote jupyter_client",
    "remote_kernel": "Remote kernel",
    "port_forwarding": "Port forwarding",
    "sshfs": "SSHFS",
}


def _alias_check(alias: str, out: str) -> Check:
    opts = parse_ssh_g(out)
    host = opts.get("hostname", [alias])[0]
    user = opts.get("user", ["?"])[0]
    port = opts.get("port", ["22"])[0]
    jump = opts.get("proxyjump", ["none"])[0]
    keys = [k for k in opts.get("identityfile", []) if Path(os.path.expanduser(k)).is_file()]
    value = f"{user}@{host}:{port}" + (f" via {jump}" if jump != "none" else "")
    data = {"hostname": host, "user": user, "port": port, "proxyjump": jump, "identityfiles": keys}
    if not keys:
        return Check(
            "host_alias",
            TITLES["host_alias"],
            WARN,
            value,
            "no IdentityFile exists; login needs a key from an ssh agent",
            data,
        )
    if host == alias and "." not in alias:
        return Check(
            "host_alias",
            TITLES["host_alias"],
            WARN,
            value,
            f"{alias!r} is not a Host of your ssh config; used as a hostname",
            data,
        )
    return Check("host_alias", TITLES["host_alias"], OK, value, data=data)


async def check_many(
    models: list[dict], on_result=None, timeout: float = 20
) -> dict[str, list[Check]]:
    """Check every kernel at once; ``on_result(kernel_name, check)`` as each one is known."""
    checker = Checker(timeout)

    async def one(model):
        cb = (lambda c: on_result(model["kernel_name"], c)) if on_result else None
        return model["kernel_name"], await checker.check(model, cb)

    return dict(await asyncio.gather(*(one(m) for m in models)))
