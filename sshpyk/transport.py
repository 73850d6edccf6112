"""The OpenSSH transport: one private ControlMaster per (ssh binary, config file, alias).

Every ssh call is an asyncio subprocess with a timeout, so the Jupyter server's event loop
never blocks on the network.  The master is ours alone: ControlMaster/ControlPath/
ControlPersist are given with ``-o``, which beats whatever the user's config says, so the
user's own masters are never touched.  Mux clients get ``ProxyCommand=false``: should the
master be gone, ssh would otherwise silently open a second, unshared connection.

A server's masters live in its ``Runtime.masters`` (``Master.for_target``); a host that
limits the sessions of one connection (sshd's MaxSessions) gets more of them, and
``sessions.start_program`` is the one place that decides when a program moves to the next.  Local
helpers live elsewhere: ``control_dir`` (where the sockets are, and their housekeeping),
``localfs`` (private dirs, lock files) and ``localproc`` (local processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shlex
import sys
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .control_dir import control_dir, prune_control_dir, remove_if_gone
from .errors import SSHConnectError, SSHPykError, classify_ssh_failure
from .localfs import same_file, try_flock
from .localproc import communicate, kill_process, run_local, spawn
from .runtime import default_runtime
from .sshconfig import parse_ssh_g

# Makes a master interactively, waiting at most the given seconds (``sshpyk.login``).
LoginHook = Callable[["Master", float], Awaitable[None]]

# How long a master outlives its last session (kernel); then ssh ends it by itself.
CONTROL_PERSIST = 60
# The master ends itself after INTERVAL * COUNT seconds without an answer: long enough to
# ride out a laptop lid or a Wi-Fi change with every kernel connection intact.  What the
# user sees meanwhile ("reconnecting", "lost") is the provisioner's watchdog's business.
SERVER_ALIVE_INTERVAL = 5
SERVER_ALIVE_COUNT = 120
TCP_CONNECT = Path(__file__).with_name("tcp_connect.py")
# connections per host at most, when it limits sessions per connection (sshd MaxSessions)
SHARDS = 8
# the failures of a connection that never asks, which an interactive login may overcome
LOGIN_KINDS = ("auth_failed", "host_key")
# Glossary: a *master* is one ssh ControlMaster connection to a host (see ``Master``); a
# *shard* is one of a host's masters (0 first; more only when sshd's MaxSessions fills one);
# a *session* is one remote command multiplexed on a master (one ssh mux client locally).


@dataclass(frozen=True)
class Target:
    """Where to connect: validated values only (see sshpyk.model)."""

    alias: str
    ssh: str = "ssh"
    config: str | None = None
    # the user's own ControlMaster for the host (``ssh_master: user``), never sshpyk's
    users_master: bool = False

    def base_argv(self) -> list[str]:
        argv = [self.ssh]
        if self.config:
            argv += ["-F", self.config]
        return argv

    @classmethod
    def from_config(cls, cfg: Any) -> Target:
        """The target of a kernel's config: an ``SSHKernelConfig``, or a dict of its fields
        (a kernelspec's model, a registry record's ``config``).  No ``ssh`` means ssh from
        ``$PATH``; no ``ssh_config`` means ssh's default config file."""

        def field(name: str):
            return cfg.get(name) if isinstance(cfg, dict) else getattr(cfg, name, None)

        return cls(
            field("ssh_host_alias"),
            field("ssh") or "ssh",
            field("ssh_config") or None,
            field("ssh_master") == "user",
        )

    @property
    def key(self) -> str:
        mode = "user" if self.users_master else ""
        raw = "\0".join([self.ssh, self.config or "", self.alias, mode]).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


class Master:
    """The shared connection to one host; every kernel on that host rides on it."""

    def __init__(self, target: Target, shard: int = 0, pool: dict[str, Master] | None = None):
        self.target = target
        self.shard = shard
        # the masters this one belongs with (its shards are found there): a Runtime's
        self.pool: dict[str, Master] = {} if pool is None else pool
        suffix = f"-{shard}" if shard else ""
        self.control_path = control_dir() / f"cm-{target.key}{suffix}"
        self._users_path = False  # ssh_master: user: control_path is the config's (ssh -G)
        # one lock per event loop: a lock bound to a finished loop would break the next one
        self._locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # ssh processes started for this connection: tests and benchmarks read it to prove
        # that liveness and reuse cost no ssh process (a counter, nothing depends on it)
        self.spawns = 0
        self.generation = 0  # +1 per connection made by this process
        # Which master process answers on the socket now: (pid, socket inode).  Any sshpyk
        # process of the user (a second server, `sshpyk ps`) may replace a dead master, and
        # forwards die with the master that held them, so this, not ``generation``, tells
        # whether a kernel's forwards are still there.
        self.identity: tuple[int, int] | None = None
        # (identity, transport) of masters that have opened a forwarded channel: the sshd
        # allows that kind of forwarding on that connection (see kernel/channels.py)
        self.forwarding_works: set[tuple] = set()

    @classmethod
    def for_target(
        cls, target: Target, shard: int = 0, pool: dict[str, Master] | None = None
    ) -> Master:
        """The host's connection number ``shard`` in ``pool`` (a Runtime's ``masters``; the
        process default runtime's when None): more than one only when the host refuses more
        sessions on one connection (sshd's MaxSessions, 10 by default)."""
        if pool is None:
            pool = default_runtime().masters
        key = f"{target.key}-{shard}"
        master = pool.get(key)
        if master is None:
            master = pool[key] = cls(target, shard, pool)
        return master

    def next_shard(self) -> Master | None:
        """The host's next connection (same pool), or None when this is the last allowed."""
        if self.shard + 1 >= SHARDS or self.target.users_master:
            return None  # the user's own master is one connection: no more are made
        return Master.for_target(self.target, self.shard + 1, self.pool)

    # ---- argv ------------------------------------------------------------------------------
    def _mux(self) -> list[str]:
        return [
            *self.target.base_argv(),
            "-o",
            f"ControlPath={self.control_path}",
            "-o",
            "ControlMaster=no",
            "-o",
            "BatchMode=yes",
            "-o",
            "ProxyCommand=false",
        ]

    async def _spawn(self, argv: list[str], **kw):
        self.spawns += 1
        return await spawn(argv, **kw)

    # ---- lifecycle -------------------------------------------------------------------------
    async def is_alive(self) -> bool:
        """Whether a master answers on the socket; sets ``identity`` to the one that does."""
        if self.target.users_master and not self._users_path:
            await self._find_users_master()
        try:
            inode = self.control_path.lstat().st_ino
        except OSError:
            inode = None
        if inode is None or not self.control_path.is_socket():
            self.identity = None
            return False
        proc = await self._spawn(
            [*self._mux(), "-O", "check", "--", self.target.alias],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await communicate(proc, None, 5)
        except asyncio.TimeoutError:
            self.identity = None
            return False
        # "Master running (pid=N)"
        found = re.search(rb"pid=(\d+)", err)
        alive = proc.returncode == 0
        self.identity = (int(found.group(1)) if found else 0, inode) if alive else None
        return alive

    async def ensure(self, timeout: float, login: LoginHook | None = None) -> None:
        """Make sure the master is up: reuse it when alive, else connect (one handshake).

        Every sshpyk process of the user shares the socket, so starting one is done under
        an flock of ``<control_path>.lock``: of processes (or event loops) starting at once,
        one connects and the others use its master, instead of each starting an ssh that
        finds the socket taken and runs on, unshared and never ended.

        The connection never asks anything (BatchMode).  A host that wants more than the key
        (a password, a one-time code, a new host key) fails it at once; ``login`` (the
        server's, for a launch from Lab) then makes the master interactively and waits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            await self._connect(deadline, None)
        except SSHConnectError as e:
            if login is None or e.kind not in LOGIN_KINDS:
                raise
            await login(self, max(1.0, deadline - loop.time()))

    async def login(self, timeout: float, env: dict[str, str] | None = None) -> None:
        """Make the master interactively (``BatchMode=no``): ssh asks its questions through
        the askpass ``env`` names (``sshpyk.login.bridge``), or on the terminal (no ``env``:
        ``sshpyk login``).  Nothing to do when a master is up already."""
        await self._connect(asyncio.get_running_loop().time() + timeout, env or {})

    async def _connect(self, deadline: float, login_env: dict[str, str] | None) -> None:
        loop = asyncio.get_running_loop()
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            if await self.is_alive():
                return
            if self.target.users_master:
                raise self._users_master_missing()
            fd = await self._flock(deadline)
            try:
                if await self.is_alive():  # another process made it meanwhile
                    return
                # a master is to be started: a good moment to forget those long gone (local
                # files only, a few syscalls)
                with contextlib.suppress(OSError, SSHPykError):
                    prune_control_dir(keep=self.control_path)
                await self._start(max(1.0, deadline - loop.time()), login_env)
                await self.is_alive()
            finally:
                os.close(fd)  # releases the flock

    async def _find_users_master(self) -> None:
        """``ssh_master: user``: the ControlPath the user's config gives the host, as ssh
        itself expands it (``ssh -G``)."""
        rc, out, _ = await run_local([*self.target.base_argv(), "-G", "--", self.target.alias], 10)
        path = parse_ssh_g(out).get("controlpath", ["none"])[0] if rc == 0 else "none"
        if path == "none":
            raise SSHConnectError(
                f"{self.target.alias!r} is set to use your own ssh connection (ssh_master: user), "
                "but your ssh config gives it no ControlPath: add `ControlMaster auto` and "
                "`ControlPath ~/.ssh/cm-%C` to its Host block",
                kind="master_missing",
            )
        self.control_path, self._users_path = Path(path), True

    def _users_master_missing(self) -> SSHConnectError:
        return SSHConnectError(
            f"your own ssh connection to {self.target.alias!r} is not running (ControlPath "
            f"{self.control_path}); sshpyk uses it and never starts one itself there "
            f"(ssh_master: user): start it, e.g. `ssh -fN {self.target.alias}`, and try again",
            kind="master_missing",
        )

    async def _flock(self, deadline: float) -> int:
        """The start lock, polled without blocking the event loop."""
        path = self.control_path.with_suffix(".lock")
        while True:
            fd = try_flock(path)
            if fd is not None:
                if same_file(fd, path):
                    return fd
                os.close(fd)  # removed by prune_control_dir meanwhile: lock the one there now
                continue
            if asyncio.get_running_loop().time() >= deadline:
                raise SSHConnectError(
                    f"another sshpyk process is still connecting to {self.target.alias!r}",
                    kind="unreachable",
                )
            await asyncio.sleep(0.05)

    async def _direct_transport(self) -> list[str]:
        """For a host ssh reaches directly: ``-o`` options that make ssh use a TCP socket
        tuned by ``tcp_connect`` (quick resumption after a cut).  Nothing otherwise."""
        rc, out, _ = await run_local([*self.target.base_argv(), "-G", "--", self.target.alias], 10)
        if rc != 0:
            return []  # ssh will say what is wrong when it connects
        opts = parse_ssh_g(out)
        if any(opts.get(k, ["none"])[0] != "none" for k in ("proxycommand", "proxyjump")):
            return []
        wait = opts.get("connecttimeout", ["none"])[0]
        wait = wait if wait.isdigit() else "30"
        # -I -S: a stdlib-only file, so no site-packages scan on every connect
        log = shlex.quote(str(self.control_path.with_suffix(".log")))
        cmd = (
            f"{shlex.quote(sys.executable)} -I -S {shlex.quote(str(TCP_CONNECT))} "
            f"%h %p {wait} {log}"
        )
        return ["-o", f"ProxyCommand={cmd}", "-o", "ProxyUseFdpass=yes"]

    async def _start(self, timeout: float, login_env: dict[str, str] | None = None) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()  # a stale socket of a dead master
        direct = await self._direct_transport()
        log = self.control_path.with_suffix(".log")
        # O_APPEND: ssh and its ProxyCommand (tcp_connect) both write to it
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        argv = [
            *self.target.base_argv(),
            "-o",
            "ControlMaster=yes",
            "-o",
            f"ControlPath={self.control_path}",
            "-o",
            f"ControlPersist={CONTROL_PERSIST}",
            "-o",
            f"BatchMode={'no' if login_env is not None else 'yes'}",
            "-o",
            f"ServerAliveInterval={SERVER_ALIVE_INTERVAL}",
            "-o",
            f"ServerAliveCountMax={SERVER_ALIVE_COUNT}",
            "-o",
            "ExitOnForwardFailure=no",
            *direct,
            "-N",
            "-f",
            "--",
            self.target.alias,
        ]
        kw: dict[str, Any] = {"stdin": asyncio.subprocess.DEVNULL}
        if login_env:  # asked through askpass: no terminal, so ssh never reads one
            kw = {**kw, "env": {**os.environ, **login_env}, "start_new_session": True}
        elif login_env is not None:  # `sshpyk login`: ssh asks on the user's terminal
            kw = {}
        try:
            # -f: ssh forks into the background once authenticated, so exit 0 = ready.
            # Its stderr goes to a file: the daemon keeps it open, a pipe would never EOF.
            proc = await self._spawn(argv, stdout=asyncio.subprocess.DEVNULL, stderr=fd, **kw)
        finally:
            os.close(fd)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            await kill_process(proc)
            why = "its questions went unanswered" if login_env is not None else "not answering"
            raise SSHConnectError(
                f"connecting to {self.target.alias!r} timed out after {timeout:g}s ({why})",
                kind="unreachable",
            ) from None
        except asyncio.CancelledError:
            await kill_process(proc)  # a login given up: its ssh asks nothing more
            raise
        if proc.returncode != 0:
            raise classify_ssh_failure(log.read_text(errors="replace"), self.target.alias)
        self.generation += 1

    async def exit(self) -> None:
        if self.target.users_master:
            return  # the user's own connection: theirs to end
        if self.control_path.is_socket():
            proc = await self._spawn(
                [*self._mux(), "-O", "exit", "--", self.target.alias],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await communicate(proc, None, 5)
            for _ in range(100):  # the master removes its socket as it ends
                if not self.control_path.exists():
                    break
                await asyncio.sleep(0.02)
        # gone: its log and lock are of no more use (kept if another process restarted it)
        with contextlib.suppress(OSError):
            remove_if_gone(self.control_path, older_than=0)

    # ---- use -------------------------------------------------------------------------------
    async def open_session(
        self, remote_command: str, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    ):
        """A remote command on the master, with pipes (or the given fds): the caller owns
        the process."""
        return await self._spawn(
            [*self._mux(), "-T", "--", self.target.alias, remote_command],
            stdin=stdin,
            stdout=stdout,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(
        self, remote_command: str, *, input: bytes | None = None, timeout: float = 30
    ) -> tuple[int, str, str]:
        proc = await self.open_session(remote_command)
        out, err = await communicate(proc, input, timeout)
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    async def _control(self, op: str, specs: list[str], timeout: float = 10) -> tuple[int, str]:
        argv = [*self._mux(), "-O", op]
        for spec in specs:
            argv += ["-L", spec]
        proc = await self._spawn(
            [*argv, "--", self.target.alias],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await communicate(proc, None, timeout)
        return proc.returncode, err.decode(errors="replace").strip()

    async def forward(self, specs: list[str]) -> tuple[bool, str]:
        """Add ``-L`` forwards to the master in one call; (all ok, ssh's message)."""
        rc, err = await self._control("forward", specs)
        return rc == 0, err

    async def cancel(self, specs: list[str]) -> None:
        await self._control("cancel", specs)


async def channel_answers(port: int, timeout: float = 5.0) -> bool | None:
    """Whether a forward on 127.0.0.1:``port`` reaches a ZeroMQ peer: True when the peer's
    greeting arrives (ZMTP: it sends one at once, first byte 0xFF), False when ssh ends the
    connection (it does so when the host refuses the channel: forwarding forbidden, or
    nothing listens there), None when nothing came within ``timeout`` (a slow link: no
    verdict)."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        first = await asyncio.wait_for(reader.read(1), timeout)
    except asyncio.TimeoutError:
        return None
    except OSError:
        return False  # nothing listens locally: the forward itself is gone
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1)
    return first == b"\xff"
