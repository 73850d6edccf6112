"""``RemoteKernel``: one kernel on a remote host, and the stream that watches it.

A launch is one remote round trip on the host's shared master (see ``transport``): the
launcher program (``remote/launcher.py``) and its parameters, HMAC key included, go over
the session's stdin; it starts the kernel detached, waits until it listens and answers
with one line.  The channel path then makes the kernel reachable and the local side says
"ack".  That session stays open as the kernel's monitor: the remote side reports the
kernel's exit on it and applies signals sent down it, so liveness costs no ssh process at
all while the kernel is idle (the watchdog pings down it).

Should the stream end (the master died), the kernel is taken up again by a fresh monitor
(``remote/attach.py``) as soon as the host answers; the remote side keeps the kernel alive
under a lease meanwhile.  A kernel a previous Jupyter server started is taken up the same
way (``attach``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import time
from collections.abc import Callable
from typing import Any

from .. import orphans
from ..errors import LaunchTimeout, RemoteLaunchError, SSHPykError, remote_failure
from ..model import SSHKernelConfig
from ..mounts import Mounts
from ..registry import Record
from ..remote import protocol
from ..sessions import abandon_session, session_failure, start_program
from ..states import TunnelState as S
from ..transport import LoginHook, Master
from .backend import Direct, LaunchBackend
from .channels import ChannelPath
from .reattach import Reattach
from .warm import WarmLauncher
from .watchdog import Watchdog

# How long a poll of a kernel told to shut down waits for its end (see polled).
EXIT_WAIT = 1.0


class RemoteKernel(Reattach):
    def __init__(
        self,
        cfg: SSHKernelConfig,
        kernel_id: str,
        master: Master,
        channels: ChannelPath,
        mounts: Mounts,
        log: logging.Logger | logging.LoggerAdapter,
        *,
        on_connected: Callable[[], None],
        backend: LaunchBackend | None = None,
        login: LoginHook | None = None,
    ):
        self.cfg = cfg
        self.kernel_id = kernel_id
        self.master = master
        self.channels = channels
        self.mounts = mounts
        self.log = log
        self.backend = backend or Direct()
        self.login = login  # a launch's (and re-attach's) way in when the host wants a login
        self.watchdog = Watchdog(cfg.ssh_host_alias, cfg.lost_timeout, log)
        self._on_connected = on_connected  # the adapter records the kernel (registry)
        self.remote: dict[str, Any] | None = None  # what the launcher reported
        self.launches = 0
        self.started_at: float | None = None
        self._session: asyncio.subprocess.Process | None = None
        self._monitor: asyncio.Task | None = None
        self._recovery: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()  # sessions being dropped in the background
        self._exited = asyncio.Event()
        self._exit_code: int | None = None
        self.shutdown_asked = False  # jupyter_client told it to shut down (see polled)
        self._launcher_pid: int | None = None
        # the master the channels were opened on (its pid and socket: see Master.identity)
        self._master_identity: tuple[int, int] | None = None
        self._exit_unconfirmed = False  # "dead" only because the host could not be asked
        self._warm = WarmLauncher()  # a restart's launcher session, opened ahead
        self._cancelled = asyncio.Event()  # cancel_launch
        # why the kernel's allocation ended (its backend said so): no restart can help
        self.allocation_ended: str | None = None

    @property
    def alias(self) -> str:
        return self.cfg.ssh_host_alias

    def _step(self, step: str) -> None:
        self.watchdog.move(S.LAUNCHING, step)

    # ---- exit ----------------------------------------------------------------------------------
    def poll(self) -> int | None:
        if self.remote is None:
            return 0
        return self._exit_code if self._exited.is_set() else None

    async def polled(self) -> int | None:
        """``poll`` for jupyter_client, which asks every 0.1 s whether a kernel it told to
        shut down has ended: an end that came just after an answer waited up to 0.1 s more
        to be seen (a restart took 0.52 or 0.64 s by that luck alone).  So, once told
        (``shutdown_asked``), this waits up to EXIT_WAIT for the end and sees it when it
        comes; jupyter_client's own timeout still bounds the shutdown."""
        if self.shutdown_asked and self.remote is not None and not self._exited.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._exited.wait(), EXIT_WAIT)
        return self.poll()

    async def wait(self) -> int | None:
        if self.remote is None:
            return 0
        await self._exited.wait()
        self.remote = None
        return self._exit_code

    def _ended(self, code: int | None, why: str, *, confirmed: bool = True) -> None:
        self._exit_code = code
        self._exit_unconfirmed = not confirmed
        self._exited.set()
        self.watchdog.move(S.DEAD, why)

    @property
    def exit_confirmed(self) -> bool:
        """The host reported the kernel's end (else it may still run there: keep its record)."""
        return self._exited.is_set() and not self._exit_unconfirmed

    # ---- launch --------------------------------------------------------------------------------
    async def start(
        self, params: dict[str, Any] | None, record: Record | None, *, restart: bool
    ) -> None:
        """Launch with ``params`` (or take up ``record``'s kernel), within launch_timeout
        (a batch queue's wait comes before it: as long as the queue takes, until
        ``cancel_launch``).  A failure, restart or not, leaves no session, channels, mounts
        or allocation behind: the kernel is dead and jupyter_client reports it so."""
        timeout = float(self.cfg.launch_timeout)
        self._cancelled = asyncio.Event()
        try:
            if record is None:
                await self._unless_cancelled(self._prepare(timeout))
            work = self._attach(record) if record else self._launch(params or {}, restart=restart)
            await asyncio.wait_for(self._unless_cancelled(work), timeout)
        except asyncio.TimeoutError:
            self.watchdog.move(S.DEAD, "launch timed out")
            await self._undo_launch()
            raise LaunchTimeout(
                f"launching {self.cfg.remote_kernel_name!r} on {self.alias!r} "
                f"timed out after {timeout:g}s (launch_timeout)"
            ) from None
        except BaseException as e:
            self.watchdog.move(S.DEAD, str(e) if isinstance(e, SSHPykError) else "launch failed")
            await self._undo_launch()
            raise

    async def _unless_cancelled(self, work) -> None:
        """``work``, unless ``cancel_launch`` comes first."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._cancelled.wait())
        try:
            await asyncio.wait((task, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if not task.cancelled():
            task.result()  # its error, if any
        if self._cancelled.is_set():
            raise SSHPykError(
                f"the launch of {self.cfg.remote_kernel_name!r} on {self.alias!r} was cancelled",
                kind="cancelled",
            )

    def cancel_launch(self) -> bool:
        """Stop a launch in progress (a queued Slurm job is cancelled); False when none is."""
        if self.watchdog.state != S.LAUNCHING or self._cancelled.is_set():
            return False
        self._cancelled.set()
        self.backend.cancel()
        return True

    async def _prepare(self, timeout: float) -> None:
        self._step("connecting")
        await self.master.ensure(timeout=timeout, login=self.login)
        await self.backend.prepare(self.master, self._step, timeout)

    async def _undo_launch(self) -> None:
        """No monitor session (a launcher that got no "ack" kills its kernel), no channels,
        no mounts."""
        await self._drop_session(abandon=True)
        await self._warm.drop()
        with contextlib.suppress(SSHPykError, asyncio.TimeoutError, OSError):
            await self.channels.close(self.master)
        self.remote = None
        await self.mounts.stop()
        with contextlib.suppress(SSHPykError, asyncio.TimeoutError, OSError):
            await self.backend.release(self.master)

    async def _launch(self, params: dict[str, Any], *, restart: bool) -> None:
        t0 = time.monotonic()
        timeout = float(self.cfg.launch_timeout)
        if self.mounts.items and not self.mounts.up:
            # before the kernel, so it may use its directories at once; kept across restarts
            self._step("mounting local directories")
            await self.mounts.start(timeout=timeout)
        self._step("starting the remote kernel")
        self.launches += 1
        self._launcher_pid = None
        self._exited = asyncio.Event()
        self._exit_code = None
        self.shutdown_asked = False
        run_id = re.sub(r"[^A-Za-z0-9-]", "", self.kernel_id)[:8] + f"-{self.launches}"
        params = {**params, **self.backend.launch_params, "kernel_id": run_id}
        command = self.backend.command(self.cfg.remote_python_prefix)
        spare = await self._warm.take(self.master) if restart else None
        started = None
        if spare is not None:  # the launcher is there already: only its parameters go
            started = await start_program(
                self.master,
                command,
                protocol.params_line(params),
                move=False,
                timeout=timeout,
                spare=spare,
                kill_by_pid=self.backend.pids_reachable,
            )
            if started.reply is None:  # the warm session was lost meanwhile: a new one
                started = None
        if started is None:
            started = await start_program(
                self.master,
                command,
                None,
                program=("launcher", params),
                # The host allows no more sessions on this connection (sshd MaxSessions): a
                # new kernel goes to the host's next one.  A restarting kernel stays where
                # its channels are.
                move=not restart,
                timeout=timeout,
                kill_by_pid=self.backend.pids_reachable,
            )
        if started.master is not self.master:
            self.log.info(
                "sshpyk: %s refused a session; using connection %d",
                self.alias,
                started.master.shard,
            )
            self.master = started.master
        reply = started.reply
        if reply is None:  # start_program has ended that session already
            raise session_failure(self.alias, started.stderr)
        self._session = started.session
        self._launcher_pid = started.shell_pid if self.backend.pids_reachable else None
        if "error" in reply:
            await self._drop_session(abandon=True)
            raise RemoteLaunchError(
                remote_failure(
                    reply,
                    alias=self.alias,
                    prefix=self.cfg.remote_python_prefix,
                    kernel_name=self.cfg.remote_kernel_name,
                ),
                kind=reply["error"],
            )
        self.remote = reply
        self._step("forwarding ports")
        await self.channels.open(self.master, reply)
        self._session.stdin.write(protocol.ack_command())
        await self._session.stdin.drain()
        self._monitor = asyncio.create_task(self._watch(self._session))
        self.started_at = time.time()
        self._connected()
        self.log.info(
            "sshpyk: kernel %s started on %s (pid %s) in %.0f ms",
            self.kernel_id,
            self.alias,
            reply.get("pid"),
            (time.monotonic() - t0) * 1000,
        )

    def warm_launcher(self) -> None:
        """A restart was asked for: its launcher's session opens now (``warm.py``)."""
        if self.remote is not None:
            self._warm.open(self.master, self.backend.command(self.cfg.remote_python_prefix))

    # ---- the monitor stream ----------------------------------------------------------------------
    async def _watch(self, session) -> None:
        """Follow the monitor stream (the channel path reads it) until the kernel's exit."""
        try:
            msg = await self.channels.follow(session, self._pong, self.watchdog.heard)
        except (ConnectionError, ValueError):
            msg = None
        if msg is not None:
            code = int(msg["exit"])
            self.allocation_ended = await self._why_ended()
            self._ended(code, self.allocation_ended or f"exited with {code}")
            return
        # The stream ended with no exit report: the link or the master went away, which is
        # not the kernel's death.  poll() keeps saying "alive"; a fresh monitor takes over.
        self.log.warning(
            "sshpyk: lost the monitor stream of kernel %s on %s; reconnecting",
            self.kernel_id,
            self.alias,
        )
        if self._session is session:
            self._session = None
            self._recovery = asyncio.create_task(self._recover())

    def _pong(self, n: int) -> None:
        self.watchdog.answer(n, recovering=self._recovery is not None)

    def _send(self, line: bytes) -> bool:
        """Write a command down the monitor stream; False when there is none to write to."""
        session = self._session
        if session is None or session.stdin is None or session.stdin.is_closing():
            return False
        try:
            session.stdin.write(line)
        except (ConnectionError, RuntimeError):
            return False
        return True

    def _ping(self, n: int) -> bool:
        return self._recovery is None and self._send(self.channels.ping_command(n))

    def _connected(self) -> None:
        self._master_identity = self.master.identity
        self.watchdog.connected()
        self._on_connected()
        self.watchdog.start(self._ping, self._exited.is_set)

    async def measure_rtt(self, timeout: float = 2.0) -> float | None:
        """One round trip down the monitor stream (no ssh process): the tunnel's latency."""
        if self.watchdog.state != S.CONNECTED:
            return None
        return await self.watchdog.measure(
            lambda n: self._send(self.channels.ping_command(n)), timeout
        )

    # ---- signals -------------------------------------------------------------------------------
    async def signal(self, signum: int) -> None:
        """To the remote kernel's process group: down the monitor, or one ssh if it is gone."""
        if self.remote is None or self._exited.is_set():
            return
        if self._send(self.channels.signal_command(signum)):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._session.stdin.drain()
                return
        try:
            await self.master.ensure(timeout=float(self.cfg.launch_timeout))
            # not a bare kill: the host checks that the group's leader is still the kernel
            await orphans.signal_kernel(
                self.master,
                self.cfg.remote_python_prefix,
                self.remote,
                signum,
                command=self.backend.command(self.cfg.remote_python_prefix),
            )
            return
        except (SSHPykError, asyncio.TimeoutError, OSError) as e:
            err = str(e)
        self.log.warning(
            "sshpyk: could not signal kernel %s on %s: %s", self.kernel_id, self.alias, err.strip()
        )
        if signum == signal.SIGKILL:
            # The last resort failed: the host is gone or the kernel already is.  Report it
            # dead so that a shutdown completes instead of waiting forever; it may well still
            # run there, so its record is kept.
            self._ended(-int(signal.SIGKILL), "host unreachable at shutdown", confirmed=False)

    # ---- sessions and the end ----------------------------------------------------------
    async def _drop_session(self, abandon: bool = False) -> None:
        """Close the monitor session.  ``abandon``: a launch that never reached "ack"; the
        launcher kills its kernel on EOF, and is killed itself should it not answer."""
        await self._close(*self._detach(), abandon=abandon, launcher_pid=self._launcher_pid)

    def _detach(self):
        """Take the current session and its watcher off this kernel (synchronously, so a
        launch that follows never sees them)."""
        session, self._session = self._session, None
        monitor, self._monitor = self._monitor, None
        return session, monitor

    async def _close(self, session, monitor, *, abandon=False, launcher_pid=None) -> None:
        if monitor:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await monitor
        if session is not None:
            # EOF, then a second to end; an abandoned launcher is then killed by its pid
            await abandon_session(self.master, session, launcher_pid if abandon else None)

    async def stop(self, *, restart: bool) -> None:
        """After the kernel's end (jupyter_client's cleanup).  The old monitor session ends
        by itself one round trip after the exit; nothing waits for that: a restart launches
        at once, a shutdown only has to close the channels and mounts meanwhile."""
        self.watchdog.stop()
        if self._recovery and self._recovery is not asyncio.current_task():
            self._recovery.cancel()
        self._recovery = None
        drop = asyncio.create_task(self._close(*self._detach()))
        self._closing.add(drop)
        drop.add_done_callback(self._closing.discard)
        if restart:
            return
        try:
            await self._warm.drop()
            await self.channels.close(self.master)
            self.remote = None
        finally:
            try:
                await self.mounts.stop()
                await self.backend.release(self.master)
            finally:
                await drop

    def status(self) -> dict[str, Any]:
        w = self.watchdog
        return {
            "state": w.state,
            "step": w.step or None,
            "since": w.since,
            "rtt_ms": None if w.rtt is None else round(w.rtt * 1000, 1),
            "host_alias": self.alias,
            "ssh_config": self.cfg.ssh_config,  # with the alias: what a login needs
            "remote_pid": (self.remote or {}).get("pid"),
            "remote_hostname": (self.remote or {}).get("hostname"),
            "mounts": self.mounts.status(),
            **self.backend.describe(),
        }
