"""``SSHKernelProvisioner``: a remote kernelspec, usable as if it were local.

A launch is one remote round trip on the host's shared master (see ``transport``): the
launcher program (``remote/launcher.py``) and its parameters, HMAC key included, go over
the session's stdin; it starts the kernel detached, waits until it listens and answers
with one line.  The local side then adds the five forwards in one ``-O forward`` call and
says "ack".  That session stays open as the kernel's monitor: the remote side reports the
kernel's exit on it and applies signals sent down it, so liveness costs no ssh process at
all while the kernel is idle.

Resilience: a watchdog pings down that stream every second.  Silence means
"reconnecting" (then "lost" after ``lost_timeout``); the master is configured to outlive
long cuts, so the connection usually just resumes.  Should the stream end (the master
died), the kernel is taken up again by a fresh monitor (``remote/attach.py``) as soon as
the host answers.  Every running kernel has a record in the registry (``registry.py``),
so a later Jupyter server can re-attach it; the remote side keeps it alive under a lease
meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import signal
import time
import weakref
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase

from . import orphans, registry
from .errors import LaunchTimeout, RemoteLaunchError, SSHConnectError, SSHPykError
from .model import InvalidField, SSHKernelConfig
from .mounts import Mounts
from .remote.protocol import MARK, program_stdin, python_command
from .transport import Master, Target, channel_answers, free_local_port, reap, session_refused

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
FORWARD_ATTEMPTS = 5
# Variables of the Jupyter server worth passing to the remote kernel; the rest of the local
# environment (paths, tokens, secrets) stays local.
FORWARDED_ENV = ("JPY_SESSION_NAME",)


def forward_specs(local_ports: list[int], remote: dict) -> list[str]:
    """The ``-L`` specs mapping ``local_ports`` to the kernel's endpoints."""
    if remote["transport"] == "ipc":
        targets = [f"{remote['ip']}-{p}" for p in remote["ports"]]
    else:
        targets = [f"127.0.0.1:{p}" for p in remote["ports"]]
    return [f"127.0.0.1:{lp}:{t}" for lp, t in zip(local_ports, targets, strict=True)]


# the watchdog's ping period, and how long without an answer means "reconnecting"
PING_INTERVAL = 1.0
SILENCE = 3.0
# after a new master: how long iopub's subscribers get to reconnect before the other channels
IOPUB_HEAD_START = 0.5
# how long a forwarded channel gets to show the kernel's greeting (no verdict after that)
CHANNEL_TIMEOUT = 5.0
# Kernels to take up again instead of launching, by kernel id: set by the server extension's
# re-attach handler right before it asks the kernel manager to "start" that kernel id.
ATTACH: dict[str, registry.Record] = {}


# Every provisioner of this process by kernel id: the status API lists kernels that are still
# launching, which the kernel manager only adds once they have started.
LIVE: weakref.WeakValueDictionary[str, SSHKernelProvisioner] = weakref.WeakValueDictionary()


class SSHKernelProvisioner(KernelProvisionerBase):
    """Starts the kernelspec ``remote_kernel_name`` of ``remote_python_prefix`` on the host
    ``ssh_host_alias`` of the user's ssh config; see ``sshpyk.model`` for every field."""

    def __init__(self, **kwargs: Any):
        # the factory passes the kernelspec's config as keyword arguments next to its own
        own = {"kernel_id", "kernel_spec", "parent", "config", "log"}
        config = {k: kwargs.pop(k) for k in list(kwargs) if k not in own}
        super().__init__(**kwargs)
        try:
            self.cfg = SSHKernelConfig.from_dict(config)
        except InvalidField as e:
            name = getattr(self.kernel_spec, "display_name", "?")
            raise SSHPykError(f"invalid SSH kernelspec {name!r}: {e}", kind="invalid_spec") from e
        self.target = Target(self.cfg.ssh_host_alias, self.cfg.ssh or "ssh", self.cfg.ssh_config)
        self.master = Master.for_target(self.target)
        self.mounts = Mounts(
            self.master,
            self.cfg.remote_python_prefix,
            self.cfg.remote_sshfs,
            self.cfg.mount_local_on_remote,
            lease_timeout=self.cfg.lease_timeout,
        )
        self.remote: dict[str, Any] | None = None  # what the launcher reported
        self.local_ports: list[int] | None = None
        self.forwards: list[str] = []  # the -L specs now active on the master
        self.launches = 0
        self._session: asyncio.subprocess.Process | None = None
        self._monitor: asyncio.Task | None = None
        self._exited = asyncio.Event()
        self._exit_code: int | None = None
        self._launcher_pid: int | None = None
        self._closing: set[asyncio.Task] = set()  # sessions being dropped in the background
        # tunnel state for the status API: launching (with step) / connected / lost / dead
        self.state, self.step, self.since = "dead", "", time.time()
        self.rtt: float | None = None
        self._pings: dict[int, asyncio.Future] = {}
        self._sent: dict[int, float] = {}  # watchdog pings in flight: id -> when sent
        self._last_pong = time.monotonic()
        self._watchdog: asyncio.Task | None = None
        self._recovery: asyncio.Task | None = None
        # the master the forwards were added to (its pid and socket: see Master.identity)
        self._master_identity: tuple[int, int] | None = None
        self._unconfirmed = False  # "dead" only because the host could not be asked
        self.started_at: float | None = None
        LIVE[str(self.kernel_id)] = self

    def _set_state(self, state: str, step: str = "") -> None:
        if (state, step) != (self.state, self.step):
            self.state, self.step, self.since = state, step, time.time()

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "step": self.step or None,
            "since": self.since,
            "rtt_ms": None if self.rtt is None else round(self.rtt * 1000, 1),
            "host_alias": self.cfg.ssh_host_alias,
            "remote_pid": (self.remote or {}).get("pid"),
            "remote_hostname": (self.remote or {}).get("hostname"),
            "mounts": self.mounts.status(),
        }

    async def measure_rtt(self, timeout: float = 2.0) -> float | None:
        """One round trip down the monitor stream (no ssh process): the tunnel's latency."""
        session = self._session
        if self.state != "connected" or not session or session.stdin.is_closing():
            return None
        n = len(self._pings) + int(time.monotonic() * 1000)
        fut = asyncio.get_running_loop().create_future()
        self._pings[n] = fut
        t0 = time.monotonic()
        try:
            session.stdin.write(f"ping {n}\n".encode())
            await session.stdin.drain()
            await asyncio.wait_for(fut, timeout)
            self.rtt = time.monotonic() - t0
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            return None
        finally:
            self._pings.pop(n, None)
        return self.rtt

    # ---- KernelProvisionerBase: state ------------------------------------------------------
    @property
    def has_process(self) -> bool:
        return self.remote is not None

    async def poll(self) -> int | None:
        if self.remote is None:
            return 0
        return self._exit_code if self._exited.is_set() else None

    async def wait(self) -> int | None:
        if self.remote is None:
            return 0
        await self._exited.wait()
        self.remote = None
        return self._exit_code

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return float(self.cfg.shutdown_timeout)

    # ---- signals -----------------------------------------------------------------------------
    async def send_signal(self, signum: int) -> None:
        """To the remote kernel's process group: down the monitor, or one ssh if it is gone."""
        if self.remote is None or self._exited.is_set():
            return
        if self._session and self._session.stdin and not self._session.stdin.is_closing():
            try:
                self._session.stdin.write(f"signal {int(signum)}\n".encode())
                await self._session.stdin.drain()
                return
            except (ConnectionError, RuntimeError):
                pass
        try:
            await self.master.ensure(timeout=float(self.cfg.launch_timeout))
            # not a bare kill: the host checks that the group's leader is still the kernel
            await orphans.signal_kernel(
                self.master, self.cfg.remote_python_prefix, self.remote, signum
            )
            rc, err = 0, ""
        except (SSHPykError, asyncio.TimeoutError, OSError) as e:
            rc, err = -1, str(e)
        if rc == 0:
            return
        self.log.warning(
            "sshpyk: could not signal kernel %s on %s: %s",
            self.kernel_id,
            self.cfg.ssh_host_alias,
            err.strip(),
        )
        if signum == signal.SIGKILL:
            # The last resort failed: the host is gone or the kernel already is.  Report it
            # dead so that a shutdown completes instead of waiting forever.
            self._exit_code = -int(signal.SIGKILL)
            self._unconfirmed = True  # it may well still run there: keep its record
            self._exited.set()
            self._set_state("dead", "host unreachable at shutdown")

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    # ---- launch ------------------------------------------------------------------------------
    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        rec = ATTACH.get(str(self.kernel_id))
        if rec is not None:
            # a kernel that runs already: its clients must sign with its key
            self.parent.session.key = rec.key.encode()
            self.parent.session.signature_scheme = rec.signature_scheme
        kwargs = await super().pre_launch(**kwargs)
        kwargs["cmd"] = []  # nothing runs locally
        return kwargs

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        timeout = float(self.cfg.launch_timeout)
        rec = ATTACH.pop(str(self.kernel_id), None)
        work = self._attach(rec) if rec else self._launch(kwargs.get("env") or {})
        # not a restart: a failure must leave nothing behind (_launch sets self.remote as
        # soon as the remote answers, before the forwards)
        fresh = self.remote is None
        try:
            return await asyncio.wait_for(work, timeout)
        except asyncio.TimeoutError:
            self._set_state("dead", "launch timed out")
            await self._undo_launch(fresh)
            raise LaunchTimeout(
                f"launching {self.cfg.remote_kernel_name!r} on {self.cfg.ssh_host_alias!r} "
                f"timed out after {timeout:g}s (launch_timeout)"
            ) from None
        except BaseException:
            self._set_state("dead", "launch failed")
            await self._undo_launch(fresh)
            raise

    async def _undo_launch(self, fresh: bool) -> None:
        """After a failed launch: no monitor session (a launcher that got no "ack" kills its
        kernel), and for a fresh launch no forwards and no mounts."""
        await self._drop_session(abandon=True)
        if not fresh:
            return
        if self.forwards:
            with contextlib.suppress(SSHPykError, asyncio.TimeoutError, OSError):
                await self.master.cancel(self.forwards)
        self.forwards, self.local_ports, self.remote = [], None, None
        await self.mounts.stop()

    async def _launch(self, env: dict[str, str]) -> KernelConnectionInfo:
        km = self.parent
        t0 = time.monotonic()
        self._set_state("launching", "connecting")
        await self.master.ensure(timeout=float(self.cfg.launch_timeout))
        if self.mounts.items and not self.mounts.up:
            # before the kernel, so it may use its directories at once; kept across restarts
            self._set_state("launching", "mounting local directories")
            await self.mounts.start(timeout=float(self.cfg.launch_timeout))
        self._set_state("launching", "starting the remote kernel")
        self.launches += 1
        self._launcher_pid = None
        self._exited = asyncio.Event()
        self._exit_code = None
        previous = self.remote_ports_for_reuse()
        params = {
            "kernel_name": self.cfg.remote_kernel_name,
            "kernel_id": re.sub(r"[^A-Za-z0-9-]", "", str(self.kernel_id))[:8]
            + f"-{self.launches}",
            "key": km.session.key.decode(),
            "signature_scheme": km.session.signature_scheme,
            "transport": self.cfg.transport,
            "launch_timeout": self.cfg.launch_timeout,
            "lease_timeout": self.cfg.lease_timeout,
            "kernel_uuid": str(self.kernel_id),
            "kernelspec": km.kernel_name,
            "ports": previous,
            "env": {**self.kernel_spec.env, **{k: env[k] for k in FORWARDED_ENV if k in env}},
        }
        stdin = program_stdin("launcher", params)
        while True:
            session = await self.master.open_session(python_command(self.cfg.remote_python_prefix))
            self._session = session
            session.stdin.write(stdin)
            await session.stdin.drain()
            reply = await self._read_message(session)
            if reply is not None:
                break
            err = (await session.stderr.read()).decode(errors="replace")
            await self._drop_session(abandon=True)
            # The host allows no more sessions on this connection (sshd MaxSessions): a
            # new kernel goes to the host's next one.  (A restarting kernel stays where its
            # forwards are.)
            nxt = self.master.next_shard() if session_refused(err) and not self.forwards else None
            if nxt is None:
                raise self._session_failure(err)
            self.log.info(
                "sshpyk: %s refused a session; using connection %d", nxt.target.alias, nxt.shard
            )
            self.master = nxt
            await self.master.ensure(timeout=float(self.cfg.launch_timeout))
        if "error" in reply:
            await self._drop_session(abandon=True)
            raise self._launch_error(reply)
        self.remote = reply
        self._set_state("launching", "forwarding ports")
        await self._forward(reply)
        session.stdin.write(b"ack\n")
        await session.stdin.drain()
        self._monitor = asyncio.create_task(self._watch(session))
        self.started_at = time.time()
        self._connected()
        self.log.info(
            "sshpyk: kernel %s started on %s (pid %s) in %.0f ms",
            self.kernel_id,
            self.cfg.ssh_host_alias,
            reply.get("pid"),
            (time.monotonic() - t0) * 1000,
        )
        return self.connection_info

    def remote_ports_for_reuse(self) -> list[int] | None:
        if self.remote and self.remote.get("transport") == "tcp":
            return list(self.remote["ports"])
        return None

    async def _read_message(self, session) -> dict | None:
        while True:
            line = await session.stdout.readline()
            if not line:
                return None
            text = line.decode(errors="replace").rstrip("\n")
            if not text.startswith(MARK):
                continue  # noise from the user's shell start-up files
            msg = json.loads(text[len(MARK) :])
            if "shell_pid" in msg:
                self._launcher_pid = int(msg["shell_pid"])
                continue
            return msg

    def _session_failure(self, stderr: str) -> SSHPykError:
        if session_refused(stderr):
            return SSHConnectError(
                f"{self.cfg.ssh_host_alias!r} refused another ssh session (sshd's MaxSessions "
                "is reached on every connection sshpyk may open): raise MaxSessions there",
                kind="sessions_exhausted",
                detail=stderr,
            )
        if "ProxyCommand" in stderr or "Connection closed by UNKNOWN" in stderr:
            return SSHConnectError(
                f"the connection to {self.cfg.ssh_host_alias!r} was lost during the launch",
                kind="unreachable",
                detail=stderr,
            )
        return RemoteLaunchError(
            f"the remote launcher on {self.cfg.ssh_host_alias!r} ended without an answer: "
            f"{stderr.strip()[-500:] or 'no output'}",
            kind="launcher_failed",
            detail=stderr,
        )

    def _launch_error(self, reply: dict) -> RemoteLaunchError:
        kind, alias = reply["error"], self.cfg.ssh_host_alias
        prefix = self.cfg.remote_python_prefix
        if kind == "prefix_missing":
            msg = f"remote python prefix {prefix!r} does not exist on {alias!r}"
        elif kind == "python_missing":
            msg = f"{prefix}/bin/python on {alias!r} is missing or not executable"
        elif kind == "kernelspec_not_found":
            avail = ", ".join(reply.get("available") or []) or "none"
            msg = (
                f"remote kernelspec {self.cfg.remote_kernel_name!r} not found in {prefix!r} "
                f"on {alias!r}; available: {avail}"
            )
        elif kind == "jupyter_client_missing":
            msg = (
                f"jupyter_client is not installed in {prefix!r} on {alias!r} "
                f"(python {reply.get('python', '?')}): pip install jupyter_client there"
            )
        else:
            msg = f"{reply.get('message', kind)} (on {alias!r})"
            if reply.get("log"):
                msg += f"; kernel log:\n{reply['log'][-1500:]}"
        return RemoteLaunchError(msg, kind=kind)

    async def _forward(self, remote: dict) -> None:
        """Map the kernel's five endpoints to 127.0.0.1 ports, keeping the local ports across
        restarts (connected clients stay connected); a port taken meanwhile is replaced."""
        # Even when the restarter asks for "new ports" (it assumes a port could not be bound
        # locally) the local ones stay: they are our forwards, the remote picks its own.
        if self.local_ports is None:
            self.local_ports = [free_local_port() for _ in PORT_NAMES]
        for _attempt in range(FORWARD_ATTEMPTS):
            specs = forward_specs(self.local_ports, remote)
            if specs == self.forwards:
                break  # the remote kept its ports: the forwards are still right
            if self.forwards:
                await self.master.cancel(self.forwards)
                self.forwards = []
            ok, err = await self.master.forward(specs)
            if ok:
                self.forwards = specs
                break
            # some local port was taken between choice and bind: drop what did bind, retry
            await self.master.cancel(specs)
            self.log.warning("sshpyk: forwarding failed (%s), retrying with new ports", err)
            self.local_ports = [free_local_port() for _ in PORT_NAMES]
        else:
            raise RemoteLaunchError(
                "could not forward the kernel's ports to 127.0.0.1", kind="forward_failed"
            )
        # -O forward only binds the local port; the host decides when a channel opens.  Its
        # sshd decides once per connection (AllowTcpForwarding/AllowStreamLocalForwarding),
        # so a master that has opened one of this transport is not asked again.
        proven = (self.master.identity, remote["transport"])
        hb = self.local_ports[PORT_NAMES.index("hb_port")]
        answer = None
        if proven not in self.master.forwarding_works:
            answer = await channel_answers(hb, CHANNEL_TIMEOUT)
        if answer and self.master.identity is not None:
            self.master.forwarding_works.add(proven)
        if answer is False:
            ipc = remote["transport"] == "ipc"
            via = "stream-local" if ipc else "TCP"
            option = "AllowStreamLocalForwarding" if ipc else "AllowTcpForwarding"
            raise RemoteLaunchError(
                f"{self.cfg.ssh_host_alias!r} refuses to forward the kernel's channels: its sshd "
                f"forbids {via} port forwarding ({option} no), which sshpyk needs "
                "(`sshpyk check` tests it)"
                # ipc is the default: a host may allow TCP forwarding only
                + ("; or set `transport: tcp` in this kernelspec" if via != "TCP" else ""),
                kind="forwarding_refused",
            )
        self._set_connection_info()

    def _set_connection_info(self) -> None:
        """What clients connect to: our forwards on 127.0.0.1, the kernel's key."""
        km = self.parent
        self.connection_info = {
            **dict(zip(PORT_NAMES, self.local_ports, strict=True)),
            "ip": "127.0.0.1",
            "transport": "tcp",
            "key": km.session.key,
            "signature_scheme": km.session.signature_scheme,
            "kernel_name": km.kernel_name,
        }

    async def _watch(self, session) -> None:
        """Follow the monitor stream until the kernel's exit is reported."""
        try:
            msg = await self._read_message(session)
            while msg is not None and "exit" not in msg:
                if "pong" in msg:
                    self._pong(msg["pong"])
                msg = await self._read_message(session)
        except (ConnectionError, ValueError):
            msg = None
        if msg is not None:
            self._exit_code = int(msg["exit"])
            self._exited.set()
            self._set_state("dead", f"exited with {self._exit_code}")
            return
        # The stream ended with no exit report: the link or the master went away, which is
        # not the kernel's death.  poll() keeps saying "alive"; a fresh monitor takes over.
        self.log.warning(
            "sshpyk: lost the monitor stream of kernel %s on %s; reconnecting",
            self.kernel_id,
            self.cfg.ssh_host_alias,
        )
        if self._session is session:
            self._session = None
            self._recovery = asyncio.create_task(self._recover())

    # ---- liveness: watchdog, recovery, re-attach -------------------------------------------
    def _connected(self) -> None:
        self._master_identity = self.master.identity
        self._last_pong = time.monotonic()
        self._set_state("connected")
        self._save_record()
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._watch_link())

    def _save_record(self) -> None:
        km = self.parent
        try:
            registry.save(
                registry.Record(
                    kernel_id=str(self.kernel_id),
                    kernelspec=km.kernel_name,
                    display_name=getattr(self.kernel_spec, "display_name", km.kernel_name),
                    config=dataclasses.asdict(self.cfg),
                    remote=dict(self.remote or {}),
                    key=km.session.key.decode(),
                    signature_scheme=km.session.signature_scheme,
                    started_at=self.started_at or time.time(),
                    local_ports=self.local_ports,
                )
            )
        except (OSError, SSHPykError) as e:  # the kernel runs anyway; re-attach won't
            self.log.warning("sshpyk: could not record kernel %s: %s", self.kernel_id, e)

    def _pong(self, n: int) -> None:
        now = time.monotonic()
        if n in self._pings:
            self._pings[n].set_result(None)
        sent = self._sent.pop(n, None)
        if sent is not None:
            self.rtt = now - sent
            self._sent = {k: v for k, v in self._sent.items() if k > n}
        self._last_pong = now
        if self.state in ("reconnecting", "lost") and self._recovery is None:
            self.log.info("sshpyk: kernel %s is reachable again", self.kernel_id)
            self._set_state("connected")

    async def _watch_link(self) -> None:
        """Ping every second; silence means the link is down (the kernel is not dead)."""
        n = 0
        while not self._exited.is_set():
            await asyncio.sleep(PING_INTERVAL)
            session = self._session
            if session is None or self._recovery is not None:
                continue
            n += 1
            self._sent[n] = time.monotonic()
            try:
                session.stdin.write(f"ping {n}\n".encode())
            except (ConnectionError, RuntimeError, AttributeError):
                continue
            silent = time.monotonic() - self._last_pong
            if self.state == "connected" and silent > SILENCE:
                self._set_state("reconnecting", "no answer from the host")
                self.log.warning("sshpyk: no answer from %s; reconnecting", self.cfg.ssh_host_alias)
            else:
                self._lost_if_overdue()

    def _lost_if_overdue(self) -> None:
        if self.state == "reconnecting" and time.time() - self.since > self.cfg.lost_timeout:
            self._set_state("lost", f"no answer for {self.cfg.lost_timeout}s")

    async def _recover(self) -> None:
        """The monitor stream ended: reconnect and take the kernel up with a new monitor."""
        if self.state != "lost":
            self._set_state("reconnecting", "connection lost")
        delay = 0.25
        try:
            while self.remote is not None and not self._exited.is_set():
                try:
                    await self.master.ensure(timeout=min(10.0, float(self.cfg.launch_timeout)))
                    reply = await self._take_up(self.remote)
                except (SSHPykError, asyncio.TimeoutError, OSError, ValueError) as e:
                    self._lost_if_overdue()
                    self.log.debug("sshpyk: reconnect to %s: %s", self.cfg.ssh_host_alias, e)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if "attached" not in reply:
                    # it ended while we were away: tell the restarter
                    code = reply.get("exit")
                    self._exit_code = int(code) if code is not None else -1
                    self._exited.set()
                    self._set_state("dead", "exited while disconnected")
                    return
                self._recovery = None
                self._connected()
                self.log.info("sshpyk: kernel %s re-attached", self.kernel_id)
                return
        finally:
            if self._recovery is asyncio.current_task():
                self._recovery = None

    async def _take_up(self, remote: dict, drop_stale: bool = True) -> dict:
        """A new monitor for a running kernel (``remote/attach.py``), forwards restored if
        the master is a new one.  Returns its first message."""
        # Compared by identity, not by this process's count of masters: any sshpyk process
        # (a second server, `sshpyk ps`) may have replaced the master meanwhile.
        stale = self.master.identity != self._master_identity
        if stale:
            await self._reforward(remote)
        session = await self.master.open_session(python_command(self.cfg.remote_python_prefix))
        try:
            session.stdin.write(
                program_stdin(
                    "attach", {"rundir": remote["rundir"], "drop_stale": stale and drop_stale}
                )
            )
            await session.stdin.drain()
            reply = await asyncio.wait_for(self._read_message(session), 15)
        except BaseException:
            await reap(session)
            raise
        if reply is not None and reply.get("error") in ("elsewhere", "unverified"):
            await reap(session)  # another host's kernel (shared $HOME): never ours to take
            raise SSHPykError(reply["message"], kind=reply["error"])
        if reply is None or ("error" in reply and reply["error"] != "gone"):
            err = (await session.stderr.read()).decode(errors="replace") if reply is None else ""
            await reap(session)
            raise SSHPykError(f"re-attach failed: {reply or err.strip()[-300:]}", kind="attach")
        if "attached" in reply and await self._channels_refused():
            await reap(session)
            self._master_identity = None  # the next attempt puts every forward back
            raise SSHPykError(
                f"a forwarded channel of kernel {self.kernel_id} is refused", kind="forward_failed"
            )
        if "attached" in reply:
            self._session = session
            self._monitor = asyncio.create_task(self._watch(session))
        else:
            await reap(session)
        return reply

    async def _channels_refused(self, names=("iopub_port", "hb_port")) -> bool:
        """Whether ssh refuses the forwarded channels to the kernel (see ``channel_answers``):
        "connected" must never be shown while a client's connection would be cut off."""
        ports = [self.local_ports[PORT_NAMES.index(n)] for n in names]
        answers = await asyncio.gather(*(channel_answers(p, CHANNEL_TIMEOUT) for p in ports))
        return any(a is False for a in answers)

    async def _reforward(self, remote: dict) -> None:
        """Put the forwards back on a new master, on the same local ports.  Clients were
        cut off and reconnect on their own, each socket on its own timer: iopub goes first,
        so that its subscribers are back before a queued request can make output (a PUB
        drops what it publishes while nobody is subscribed)."""
        specs = forward_specs(self.local_ports, remote)
        first, _ = await self.master.forward([specs[1]])
        if first:
            await asyncio.sleep(IOPUB_HEAD_START)
        rest, _ = await self.master.forward(specs[:1] + specs[2:])
        if first and rest:
            self.forwards = specs
            self._set_connection_info()
            return
        # a local port was taken meanwhile: the general path, which picks new ones
        await self.master.cancel(specs)
        self.forwards = []
        await self._forward(remote)

    async def _attach(self, rec: registry.Record) -> KernelConnectionInfo:
        """Take up a kernel a previous Jupyter server started (see ``ATTACH``)."""
        km = self.parent
        self._set_state("launching", "connecting")
        await self.master.ensure(timeout=float(self.cfg.launch_timeout))
        self._set_state("launching", "re-attaching")
        self._exited = asyncio.Event()
        self._exit_code = None
        self.local_ports = rec.local_ports
        if rec.local_ports:
            # the old server's forwards may still be on a surviving master: free the ports
            await self.master.cancel(forward_specs(rec.local_ports, rec.remote))
        # forward in any case, but never end a connection: which one the kernel's old
        # monitor used is unknown here, and it may serve other kernels
        self._master_identity = None
        reply = await self._take_up(rec.remote, drop_stale=False)
        if "attached" not in reply:
            raise RemoteLaunchError(
                f"kernel {rec.kernel_id} on {self.cfg.ssh_host_alias!r} is no longer running",
                kind="gone",
            )
        self.remote = dict(rec.remote)
        self.started_at = rec.started_at
        km.session.key = rec.key.encode()
        if self.mounts.items and not self.mounts.up:
            await self.mounts.start(timeout=float(self.cfg.launch_timeout))
        self._connected()
        # the dead server's connection file has the same ports and key: jupyter_client
        # would take it for its own and never load ours into the kernel manager
        with contextlib.suppress(FileNotFoundError, TypeError):
            os.remove(km.connection_file)
        return self.connection_info

    async def _drop_session(self, abandon: bool = False) -> None:
        """Close the monitor session.  ``abandon``: a launch that never reached "ack"; the
        launcher kills its kernel on EOF, and is killed itself should it not answer."""
        await self._close(*self._detach(), abandon=abandon, launcher_pid=self._launcher_pid)

    def _detach(self):
        """Take the current session and its watcher off this provisioner (synchronously, so
        a launch that follows never sees them)."""
        session, self._session = self._session, None
        monitor, self._monitor = self._monitor, None
        return session, monitor

    async def _close(self, session, monitor, *, abandon=False, launcher_pid=None) -> None:
        if monitor:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await monitor
        if session is None:
            return
        if session.stdin:
            session.stdin.close()
        try:
            await asyncio.wait_for(session.wait(), 1.0)
            return
        except asyncio.TimeoutError:
            pass
        if abandon and launcher_pid:
            with contextlib.suppress(SSHPykError, asyncio.TimeoutError, OSError):
                await self.master.run(f"kill -9 {int(launcher_pid)}", timeout=5)
        await reap(session)

    async def cleanup(self, restart: bool = False) -> None:
        for task in (self._watchdog, self._recovery):
            if task and task is not asyncio.current_task():
                task.cancel()
        self._watchdog = self._recovery = None
        # The old monitor session ends by itself one round trip after the kernel's exit;
        # nothing has to wait for that: a restart launches at once, a shutdown only has to
        # cancel the forwards meanwhile.
        drop = asyncio.create_task(self._close(*self._detach()))
        self._closing.add(drop)
        drop.add_done_callback(self._closing.discard)
        if restart:
            return
        if self.forwards:
            await self.master.cancel(self.forwards)
        self.forwards = []
        self.local_ports = None
        self.remote = None
        try:
            if self._exited.is_set() and not self._unconfirmed:
                registry.remove(str(self.kernel_id))
            else:
                # Shut down without word from the host (it was unreachable): the kernel may
                # still run there.  Its record stays, as an orphan, so `sshpyk ps`, the
                # sidebar and `sshpyk reap` can finish the job once the host is back (and
                # the lease ends it meanwhile).
                registry.abandon(str(self.kernel_id))
        except (OSError, SSHPykError, TypeError, ValueError) as e:
            # a full disk or a broken record must not keep the mounts and session alive
            self.log.warning("sshpyk: could not update the record of %s: %s", self.kernel_id, e)
        finally:
            await self.mounts.stop()
            await drop

    # ---- persistence ---------------------------------------------------------------------------
    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info.update(
            {
                "remote": self.remote,
                "local_ports": self.local_ports,
                "forwards": self.forwards,
                "launches": self.launches,
            }
        )
        return info

    async def load_provisioner_info(self, provisioner_info: dict) -> None:
        await super().load_provisioner_info(provisioner_info)
        self.remote = provisioner_info.get("remote")
        self.local_ports = provisioner_info.get("local_ports")
        self.forwards = list(provisioner_info.get("forwards") or [])
        self.launches = int(provisioner_info.get("launches") or 0)
