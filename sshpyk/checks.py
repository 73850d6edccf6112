"""Health checks of SSH kernels: is everything in place for a launch to work?

All kernels are checked concurrently.  Work is shared: one ``ssh -G`` and one connection
(the host's master) per host, one remote inspection per (host, prefix), so 20 kernels on 3
hosts take about as long as the slowest host.  Each check reports as soon as it is known
(``on_result``), which the REST API streams to the Lab UI.

Each check is one small function of what was found (``ssh_client_check`` ...
``sshfs_check``); ``Checker`` finds it (local commands, the master, the remote inspection of
``remote_env``) and runs the checks in order.  A failed check that later ones depend on
(``STOPS``) skips the rest, saying why.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import container_check, remote_env, slurm_check
from .errors import SSHPykError, config_error_summary, remote_failure
from .localproc import SSH_AT_ONCE, free_local_port, kill_process, run_local
from .model import schema
from .remote.protocol import PROBE, program_stdin, python_command, read_message
from .sshconfig import parse_ssh_g
from .states import CheckStatus
from .transport import Master, Target, channel_answers

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
    "container",
    "slurm",
    "sshfs",
)
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
    "container": "Container",
    "slurm": "Slurm",
    "sshfs": "SSHFS",
}
# checks whose failure leaves nothing to check after them, and what the rest then say
STOPS = {
    "ssh_client": "no ssh client",
    "ssh_config": "no ssh config file",
    "host_alias": "the host alias does not resolve",
    "connection": "no connection",
    "remote_system": "remote inspection failed",
    "remote_python": "no remote python",
    "jupyter_client": "jupyter_client missing",
}


@dataclass
class Check:
    id: str
    title: str
    status: CheckStatus
    value: str = ""
    hint: str = ""
    data: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def _check(cid: str, status: CheckStatus, value: str = "", hint: str = "", data=None) -> Check:
    return Check(cid, TITLES[cid], status, value, hint, data)


def _is_file(path: str) -> bool:
    return Path(path).expanduser().is_file()  # a local stat: too quick to be worth a thread


def _is_dir(path: str) -> bool:
    return Path(path).expanduser().is_dir()


# ---- one function per check: its verdict from what was found ------------------------------


def ssh_client_check(ssh: str, path: str | None, version: tuple[int, str, str]) -> Check:
    """``path``: where ``ssh`` was found (None: nowhere); ``version``: ``ssh -V``'s result."""
    rc, out, err = version
    if not path or rc != 0:
        hint = "install the OpenSSH client (Debian: apt-get install openssh-client)"
        return _check("ssh_client", CheckStatus.FAIL, ssh, hint)
    return _check("ssh_client", CheckStatus.OK, f"{path} ({(err or out).strip()})")


def ssh_config_check(config: str | None) -> Check:
    if not config:
        return _check("ssh_config", CheckStatus.OK, "ssh's default (~/.ssh/config)")
    if _is_file(config):
        return _check("ssh_config", CheckStatus.OK, config)
    return _check("ssh_config", CheckStatus.FAIL, config, "the ssh config file does not exist")


def host_alias_check(alias: str, resolved: tuple[int, str, str]) -> Check:
    """From ``ssh -G``'s result: where the alias leads, and whether a key is there."""
    rc, out, err = resolved
    if rc != 0:
        # never ssh's words: they quote the file
        return _check("host_alias", CheckStatus.FAIL, alias, config_error_summary(err, rc))
    opts = parse_ssh_g(out)
    host = opts.get("hostname", [alias])[0]
    user = opts.get("user", ["?"])[0]
    port = opts.get("port", ["22"])[0]
    jump = opts.get("proxyjump", ["none"])[0]
    keys = [k for k in opts.get("identityfile", []) if Path(os.path.expanduser(k)).is_file()]
    value = f"{user}@{host}:{port}" + (f" via {jump}" if jump != "none" else "")
    data = {"hostname": host, "user": user, "port": port, "proxyjump": jump, "identityfiles": keys}
    if not keys:
        hint = "no IdentityFile exists; login needs a key from an ssh agent"
        return _check("host_alias", CheckStatus.WARN, value, hint, data)
    if host == alias and "." not in alias:
        hint = f"{alias!r} is not a Host of your ssh config; used as a hostname"
        return _check("host_alias", CheckStatus.WARN, value, hint, data)
    return _check("host_alias", CheckStatus.OK, value, data=data)


def connection_check(took: float | None, error: SSHPykError | None = None) -> Check:
    if error is not None:
        return _check("connection", CheckStatus.FAIL, error.kind, str(error))
    return _check("connection", CheckStatus.OK, f"{(took or 0) * 1000:.0f} ms")


def remote_python_checks(info: dict, prefix: str, alias: str) -> list[Check]:
    """The system and the python of the inspected environment (remote_system, remote_python)."""
    if info.get("error") in ("prefix_missing", "python_missing", "prelude_failed"):
        hint = remote_failure(info, alias=alias, prefix=prefix)
        return [
            _check("remote_system", CheckStatus.SKIPPED, hint="needs the remote python"),
            _check("remote_python", CheckStatus.FAIL, prefix, hint),
        ]
    return [
        _check("remote_system", CheckStatus.OK, info["system"]),
        _check("remote_python", CheckStatus.OK, f"{prefix}/bin/python {info['python']}"),
    ]


def jupyter_client_check(info: dict, prefix: str, alias: str) -> Check:
    if not info.get("jupyter_client"):
        return _check(
            "jupyter_client",
            CheckStatus.FAIL,
            "missing",
            f"pip install jupyter_client in {prefix} on {alias}",
        )
    return _check("jupyter_client", CheckStatus.OK, info["jupyter_client"])


def remote_kernel_check(info: dict, kernel_name: str) -> Check:
    specs = info.get("kernelspecs") or {}
    spec = specs.get(kernel_name)
    if spec is None or "error" in spec:
        hint = (spec or {}).get("error") or (f"available: {', '.join(sorted(specs)) or 'none'}")
        return _check("remote_kernel", CheckStatus.FAIL, kernel_name, hint)
    data = {k: spec[k] for k in ("interrupt_mode", "display_name", "language")}
    return _check("remote_kernel", CheckStatus.OK, shlex.join(spec["argv"]), data=data)


def port_forwarding_check(
    transport: str, alias: str, works: bool | None, error: BaseException | None = None
) -> Check:
    """``works``: whether a forwarded channel of ``transport`` reached a listener on the host
    (True), was refused (False), or gave no verdict in time (None)."""
    kind = "stream-local (unix socket)" if transport == "ipc" else "TCP"
    if error is not None:
        return _check("port_forwarding", CheckStatus.FAIL, transport, f"could not test it: {error}")
    if works:
        return _check("port_forwarding", CheckStatus.OK, f"{kind} forwarding works")
    if works is None:
        return _check(
            "port_forwarding", CheckStatus.WARN, transport, "no answer through a forward in time"
        )
    option = "AllowStreamLocalForwarding" if transport == "ipc" else "AllowTcpForwarding"
    return _check(
        "port_forwarding",
        CheckStatus.FAIL,
        f"{kind} forwarding refused",
        f"the sshd of {alias} forbids {kind} port forwarding ({option} no): set "
        "`channels: relay` in this kernelspec (the kernel's messages then travel over its own "
        "ssh session, no forward needed), or ask its admin to allow forwarding",
    )


def sshfs_check(info: dict, mounts: list[dict], alias: str) -> Check:
    """The SSHFS pieces of a kernel with ``mounts``: remote sshfs, local directories,
    remote mount points."""
    missing = [m["local_path"] for m in mounts if not _is_dir(m["local_path"])]
    if not info.get("sshfs"):
        hint = f"install sshfs on {alias} (Debian: apt-get install sshfs)"
        return _check("sshfs", CheckStatus.FAIL, "sshfs missing", hint)
    if missing:
        return _check(
            "sshfs", CheckStatus.FAIL, ", ".join(missing), "local directories to mount do not exist"
        )
    problems = info.get("mount_points") or {}
    bad = {m["remote_path"]: why for m in mounts if (why := problems.get(m["remote_path"]))}
    if bad:
        return _check(
            "sshfs",
            CheckStatus.FAIL,
            "; ".join(f"{path}: {why}" for path, why in bad.items()),
            "remote mount points must be empty directories you can write to "
            "(missing ones are created)",
        )
    return _check("sshfs", CheckStatus.OK, info["sshfs"])


# ---- the remote end of the port forwarding check ----------------------------------------


async def probe_forwarding(master: Master, prefix: str, transport: str, timeout: float):
    """Whether the host opens a forwarded channel of ``transport`` (tcp: a TCP port, ipc: a
    unix socket) to a listener on it: True, False (refused), None (no verdict).  The listener
    is ``remote/forward_probe.py``: it greets like a ZeroMQ peer (see ``channel_answers``)."""
    params = {"transport": transport, "timeout": timeout}
    proc = await master.open_session(python_command(prefix))
    spec = None
    try:
        proc.stdin.write(program_stdin("forward_probe", params))
        await proc.stdin.drain()
        where = await asyncio.wait_for(_probe_address(proc), timeout)
        remote = where if transport == "ipc" else f"127.0.0.1:{where}"
        spec = f"127.0.0.1:{free_local_port()}:{remote}"
        ok, err = await master.forward([spec])
        if not ok:
            raise SSHPykError(f"ssh -O forward failed: {err}", kind="forward_failed")
        return await channel_answers(int(spec.split(":")[1]), min(timeout, 10))
    finally:
        if spec:
            await master.cancel([spec])
        await kill_process(proc, grace=0.5)


async def _probe_address(proc) -> str | int:
    while True:
        msg = await read_message(proc.stdout)
        if msg is None:
            err = (await proc.stderr.read()).decode(errors="replace")
            raise SSHPykError(f"the forwarding probe ended: {err.strip()[-300:] or 'no output'}")
        if PROBE in msg:
            return msg[PROBE]


# ---- running the checks -----------------------------------------------------------------


@dataclass
class _Run:
    """One kernel's checks as they are found."""

    model: dict
    target: Target
    on_result: Callable[[Check], None] | None
    results: list[Check] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # the remote inspection, once made

    def report(self, check: Check) -> None:
        self.results.append(check)
        if self.on_result:
            self.on_result(check)

    def skip_rest(self, after: str) -> None:
        for cid in CHECK_IDS[CHECK_IDS.index(after) + 1 :]:
            if cid == "sshfs" and not self.model.get("mount_local_on_remote"):
                continue
            if cid in ("slurm", "container") and self.model.get(cid) is None:
                continue
            self.report(_check(cid, CheckStatus.SKIPPED, hint=STOPS[after]))


class Checker:
    """Runs checks, sharing every piece of work that several kernels need."""

    def __init__(
        self,
        timeout: float = 20,
        deadline: float | None = None,
        masters: dict[str, Master] | None = None,
    ):
        self._timeout = timeout
        # loop time by which all work must have ended (the CLI's time per host), so work
        # given up on is killed by its own timeout, never left running
        self.deadline = deadline
        self.masters = masters  # the pool of connections (a Runtime's; None: the default)
        self._tasks: dict[tuple, asyncio.Task] = {}
        self._gate = asyncio.Semaphore(SSH_AT_ONCE)  # pieces of work (ssh) at once

    @property
    def timeout(self) -> float:
        """The time of the next piece of work: ``timeout``, and never past ``deadline``."""
        if self.deadline is None:
            return self._timeout
        left = self.deadline - asyncio.get_running_loop().time()
        return max(0.1, min(self._timeout, left))

    def master(self, target: Target) -> Master:
        return Master.for_target(target, pool=self.masters)

    def _shared_task(self, key: tuple, factory) -> asyncio.Task:
        """The one task doing the work ``key`` for every kernel that needs it."""

        # no piece of work waits on another, so the gate can never deadlock
        async def gated():
            async with self._gate:
                return await factory()

        if key not in self._tasks:
            self._tasks[key] = asyncio.ensure_future(gated())
        return self._tasks[key]

    # ---- the shared pieces of work ------------------------------------------------------
    async def ssh_version(self, ssh: str):
        return await self._shared_task(("ssh-V", ssh), lambda: run_local([ssh, "-V"], 5))

    async def resolve(self, target: Target):
        argv = [*target.base_argv(), "-G", "--", target.alias]
        return await self._shared_task(("G", target), lambda: run_local(argv, 10))

    async def connect(self, target: Target) -> float:
        """Seconds it took to have the host's master up (0-ish when it was already)."""

        async def time_connect():
            t0 = time.monotonic()
            await self.master(target).ensure(self.timeout)
            return time.monotonic() - t0

        return await self._shared_task(("connect", target), time_connect)

    async def inspect(
        self,
        target: Target,
        prefix: str,
        sshfs: str | None,
        mount_points: tuple[str, ...] = (),
        prelude: tuple[str, ...] = (),
    ) -> dict:
        def inspect_environment():
            return remote_env.inspect(
                self.master(target),
                prefix,
                sshfs=sshfs,
                mount_points=mount_points,
                timeout=self.timeout,
                prelude=prelude,
            )

        key = ("inspect", target, prefix, sshfs, mount_points, prelude)
        return await self._shared_task(key, inspect_environment)

    async def forwarding(self, target: Target, prefix: str, transport: str) -> bool | None:
        def probe():
            return probe_forwarding(self.master(target), prefix, transport, self.timeout)

        return await self._shared_task(("forward", target, prefix, transport), probe)

    # ---- the checks, in order ---------------------------------------------------------
    async def check(
        self, model: dict, on_result: Callable[[Check], None] | None = None
    ) -> list[Check]:
        run = _Run(model, Target.from_config(model), on_result)
        steps = (
            self._local_checks,
            self._connection,
            self._remote_environment,
            self._port_forwarding,
            self._sections,
            self._sshfs,
        )
        for step in steps:
            async for check in step(run):
                run.report(check)
                if check.status == CheckStatus.FAIL and check.id in STOPS:
                    run.skip_rest(check.id)
                    return run.results
        return run.results

    async def _local_checks(self, run: _Run):
        ssh = run.target.ssh
        path = shutil.which(ssh)
        yield ssh_client_check(ssh, path, await self.ssh_version(ssh) if path else (127, "", ""))
        yield ssh_config_check(run.model.get("ssh_config"))
        yield host_alias_check(run.target.alias, await self.resolve(run.target))

    async def _connection(self, run: _Run):
        try:
            yield connection_check(await self.connect(run.target))
        except SSHPykError as e:
            yield connection_check(None, e)

    async def _remote_environment(self, run: _Run):
        """One inspection for every kernel that shares the environment."""
        model, alias = run.model, run.target.alias
        prefix = model["remote_python_prefix"]
        points = tuple(m["remote_path"] for m in model.get("mount_local_on_remote") or [])
        try:
            run.info = await self.inspect(
                run.target,
                prefix,
                model.get("remote_sshfs"),
                points,
                tuple(model.get("prelude") or ()),  # as the kernel runs: after its prelude
            )
        except (SSHPykError, asyncio.TimeoutError) as e:
            yield _check("remote_system", CheckStatus.FAIL, "", str(e))
            return
        for check in remote_python_checks(run.info, prefix, alias):
            yield check
        if model.get("container") is not None:  # the kernel's python is the image's
            for cid in ("jupyter_client", "remote_kernel"):
                yield _check(cid, CheckStatus.SKIPPED, "in the image", "see the Container check")
            return
        yield jupyter_client_check(run.info, prefix, alias)
        yield remote_kernel_check(run.info, model["remote_kernel_name"])

    async def _port_forwarding(self, run: _Run):
        """Every channel of the kernel is a forward of the master (channels: forward)."""
        if run.model.get("channels") == "relay":
            yield _check(
                "port_forwarding",
                CheckStatus.SKIPPED,
                "not needed",
                "channels: relay carries the kernel's messages over its own ssh session",
            )
            return
        transport = run.model.get("transport") or schema()["properties"]["transport"]["default"]
        prefix = run.model["remote_python_prefix"]
        try:
            works = await self.forwarding(run.target, prefix, transport)
        except (SSHPykError, asyncio.TimeoutError, OSError) as e:
            yield port_forwarding_check(transport, run.target.alias, None, e)
            return
        yield port_forwarding_check(transport, run.target.alias, works)

    async def _sections(self, run: _Run):
        """A container kernel's runtime and image, a Slurm kernel's login host: one command
        each (container_check.py, slurm_check.py); a first run may pull an image."""
        for cid, module in (("container", container_check), ("slurm", slurm_check)):
            section = run.model.get(cid)
            if section is None:
                continue
            cmd = module.command(section, run.model.get("prelude") or ())
            try:
                _, out, _ = await self.master(run.target).run(cmd, timeout=self.timeout * 3)
            except (SSHPykError, asyncio.TimeoutError, OSError) as e:
                yield _check(cid, CheckStatus.FAIL, "", str(e))
                continue
            ok, value, hint = module.verdict(out, section, run.target.alias)
            status = CheckStatus.WARN if ok is None else CheckStatus.OK if ok else CheckStatus.FAIL
            yield _check(cid, status, value, hint)

    async def _sshfs(self, run: _Run):
        """Only when mounts are configured."""
        mounts = run.model.get("mount_local_on_remote") or []
        if mounts:
            yield sshfs_check(run.info, mounts, run.target.alias)


async def check_many(
    models: list[dict], on_result=None, timeout: float = 20, masters: dict | None = None
) -> dict[str, list[Check]]:
    """Check every kernel at once; ``on_result(kernel_name, check)`` as each one is known.
    ``masters``: the pool of connections to use (a Runtime's; None: the process default)."""
    checker = Checker(timeout, masters=masters)

    async def one(model):
        cb = (lambda c: on_result(model["kernel_name"], c)) if on_result else None
        return model["kernel_name"], await checker.check(model, cb)

    return dict(await asyncio.gather(*(one(m) for m in models)))
