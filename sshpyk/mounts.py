"""SSHFS mounts of local directories on the kernel's host, for the kernel's lifetime.

Design (why, in short; README "SSHFS" has the long form): the remote runs
``sshfs -o passive``, which speaks SFTP on its stdin/stdout, in an ssh session on the
host's existing master; that session's stdin/stdout are pipes to ``sshpyk.sftp_server``,
a local SFTP-only server confined to the shared directory (``sshpyk.confine``: openat2's
RESOLVE_IN_ROOT where Linux has it, else a walk that follows no symlink).
So nothing listens anywhere, no local sshd, no key, no authorized_keys change, no
credential to leak, and the remote can do SFTP on that one directory and nothing else.

Lifetime: a mount outlives kernel restarts and ends with the kernel's shutdown.  When the
stream breaks (the master died with the link), it is mounted again as soon as the host
answers; the remote helper clears what the broken mount left behind.  Nothing outlives what
it serves: the local server dies with the Jupyter server (parent-death signal, or a parent
poll), which ends the stream and so the remote sshfs; and the remote helper unmounts by
itself once the local server has not answered for the kernel's ``lease_timeout`` (the same
bound as the kernel's own lease, for a link or server that is gone without a word).

``ro`` in ``sshfs_options`` is enforced here, by the local server, not only by the remote
sshfs (which the untrusted remote side could simply remount).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from typing import Any

from . import confine, sftp_server
from .errors import SSHPykError, remote_failure
from .localproc import kill_process
from .remote.protocol import EXPIRED, MOUNTED, REPLACED, python_command, read_message
from .runtime import default_runtime
from .sessions import start_program
from .states import MountState
from .transport import Master

log = logging.getLogger("sshpyk.mounts")

PIPE_SIZE = 1 << 20  # fewer wake-ups per MB between the local server and ssh
STOP_WAIT = 5.0
REMOUNT_BACKOFF = (0.25, 0.5, 1, 2, 4, 8)
# sshfs options that make no sense with a stream sshpyk owns and re-creates itself
_DROPPED_OPTIONS = {"reconnect"}


class MountError(SSHPykError):
    pass


def _options(text: str | None) -> str:
    """``sshfs_options`` as passed to the remote sshfs (those sshpyk handles itself dropped)."""
    opts = [o for o in (text or "").split(",") if o and o.split("=")[0] not in _DROPPED_OPTIONS]
    return ",".join(opts)


def _read_only(options: str) -> bool:
    return "ro" in options.split(",")


def _pipe() -> tuple[int, int]:
    r, w = os.pipe()  # close-on-exec already (PEP 446), and portable unlike pipe2
    if not sys.platform.startswith("linux"):
        return r, w  # 1031 is Linux's F_SETPIPE_SZ only: elsewhere the system's pipe size
    with contextlib.suppress(OSError, ImportError):
        import fcntl

        fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    return r, w


class Mount:
    """One local directory mounted at one remote path."""

    def __init__(
        self,
        master: Master,
        prefix: str,
        sshfs: str | None,
        spec: dict,
        timeout: float = 30,
        lease_timeout: float | None = None,
    ):
        self.master = master
        self.prefix = prefix
        self.sshfs = sshfs
        self.local_path = os.path.realpath(os.path.expanduser(spec["local_path"]))
        self.remote_path = spec["remote_path"]
        self.options = _options(spec.get("sshfs_options"))
        self.optional = bool(spec.get("optional"))
        self.read_only = _read_only(self.options)
        self.timeout = timeout
        self.lease_timeout = lease_timeout
        self.state, self.since, self.error = MountState.UNMOUNTED, time.time(), None
        self.mounts = 0  # successful mounts, 1 + remounts
        self._server: asyncio.subprocess.Process | None = None
        self._ssh: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task | None = None
        self._server_log: asyncio.Task | None = None
        self._starting: asyncio.Future | None = None
        self._stopping = False
        self._ssh_stderr: list[str] = []  # ssh's own last words (not the helper's reports)
        self.users = 0  # kernels using this mount (see Mounts)

    def _set(self, state: MountState, error: str | None = None) -> None:
        self.state, self.since, self.error = state, time.time(), error

    def status(self) -> dict[str, Any]:
        return {
            "local_path": self.local_path,
            "remote_path": self.remote_path,
            "state": self.state,
            "since": self.since,
            "error": self.error,
            "mounts": self.mounts,
        }

    def server_argv(self) -> list[str]:
        argv = [sys.executable, "-m", "sshpyk.sftp_server", "--skip-noise"]
        if self.read_only:
            argv.append("--read-only")
        # it dies with this process (the Jupyter server), even by kill -9
        return [*argv, "--parent", str(os.getpid()), "--", self.local_path]

    # ---- start -------------------------------------------------------------------------------
    async def ensure(self) -> None:
        """Mounted (or being mounted again) when this returns; one start for all its users."""
        if self.state in (MountState.MOUNTED, MountState.REMOUNTING):
            return
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self.start())
        await asyncio.shield(self._starting)

    async def start(self) -> None:
        self._stopping = False
        self._set(MountState.MOUNTING)
        try:
            await asyncio.wait_for(self._mount(), self.timeout)
        except asyncio.TimeoutError:
            await self._kill()
            self._set(MountState.FAILED, "timed out")
            raise MountError(
                f"mounting {self.local_path} on {self.master.target.alias}:{self.remote_path} "
                f"timed out after {self.timeout:g}s",
                kind="mount_timeout",
            ) from None
        except MountError as e:
            self._set(MountState.FAILED, str(e))
            raise
        self._watcher = asyncio.create_task(self._watch())

    async def _mount(self) -> None:
        alias = self.master.target.alias
        if not os.path.isdir(self.local_path):  # noqa: ASYNC240 - one local stat
            raise MountError(
                f"local directory {self.local_path} to mount on {alias} does not exist",
                kind="local_dir_missing",
            )
        # confine makes no raw syscall where openat2's number is unknown (off Linux one can
        # kill this very process: SIGSYS on macOS); without openat2 the server walks paths
        try:
            confine.check_supported(self.local_path)
        except OSError as e:
            raise MountError(f"cannot share {self.local_path}: {e}", kind="sftp_unsupported") from e
        try:
            started = await start_program(
                self.master,
                self._command(),
                None,
                move=True,  # a mount holds no forwards: any connection of the host will do
                timeout=self.timeout,
                open_session=self._open_session,
            )
        except BaseException:
            await self._kill()  # the local server of the last attempt
            raise
        self.master = started.master
        reply = started.reply
        if reply is None or MOUNTED not in reply:
            self._ssh_stderr = started.stderr.splitlines()
            await self._kill()
            raise self._error(reply, started.stderr)
        self.mounts += 1
        self._set(MountState.MOUNTED)
        log.info("sshpyk: mounted %s on %s:%s", self.local_path, alias, self.remote_path)

    def _command(self) -> str:
        """The remote helper's command: its params go in argv (none is a secret), as its
        stdin and stdout are the SFTP stream."""
        params = {
            "remote_path": self.remote_path,
            "sshfs": self.sshfs,
            "options": self.options,
            "lease_timeout": self.lease_timeout,
        }
        return python_command(self.prefix, "mount", params)

    async def _open_session(self, master: Master):
        """A fresh local server, and an ssh session on ``master`` whose stdin and stdout are
        pipes to it: one attempt of ``start_program`` (a refused one's server ends here)."""
        await self._kill()
        s2r_r, s2r_w = _pipe()  # local server -> ssh -> remote sshfs
        r2s_r, r2s_w = _pipe()  # remote sshfs -> ssh -> local server
        try:
            self._server = await asyncio.create_subprocess_exec(
                *self.server_argv(),
                stdin=r2s_r,
                stdout=s2r_w,
                stderr=asyncio.subprocess.PIPE,
            )
            self._server_log = asyncio.create_task(self._log_server(self._server))
            self._ssh = await master.open_session(self._command(), stdin=s2r_r, stdout=r2s_w)
        finally:
            for fd in (s2r_r, s2r_w, r2s_r, r2s_w):
                os.close(fd)
        self._ssh_stderr = []
        return self._ssh

    async def _log_server(self, proc: asyncio.subprocess.Process) -> None:
        """What the local server says (why it refused or stopped serving) goes to the
        Jupyter log; it never holds a secret (paths and SFTP errors only)."""
        assert proc.stderr
        with contextlib.suppress(ValueError, ConnectionError):
            while line := await proc.stderr.readline():
                text = line.decode(errors="replace").rstrip()
                # which confinement serves the share (openat2, or the walk): not a problem
                said = log.info if text.startswith(sftp_server.CONFINED_BY) else log.warning
                said("sshpyk: sftp server for %s: %s", self.local_path, text[:500])

    async def _message(self) -> dict | None:
        """The helper's next report (its reports come on ssh's stderr), None at EOF."""
        assert self._ssh and self._ssh.stderr
        return await read_message(self._ssh.stderr, on_noise=self._note_stderr)

    def _note_stderr(self, line: str) -> None:
        self._ssh_stderr = [*self._ssh_stderr[-20:], line]  # ssh's own words, for errors

    def _error(self, reply: dict | None, stderr: str) -> MountError:
        alias = self.master.target.alias
        where = f"{alias}:{self.remote_path}"
        if reply is None:
            return MountError(
                f"mounting {self.local_path} on {where} failed: {stderr[-500:] or 'no answer'}",
                kind="mount_failed",
            )
        kind = reply["error"]
        otherwise = f"cannot mount {self.local_path} on {where}: {reply.get('message', kind)}"
        msg = remote_failure(reply, alias=alias, prefix=self.prefix, otherwise=otherwise)
        return MountError(msg, kind=kind)

    # ---- running -----------------------------------------------------------------------------
    async def _watch(self) -> None:
        """Log sshfs's messages; when the stream ends without a stop, mount again."""
        replaced = False
        with contextlib.suppress(ValueError, ConnectionError):
            while (msg := await self._message()) is not None:
                if "shell_pid" in msg:
                    continue
                if "log" in msg:
                    log.debug("sshpyk: sshfs %s: %s", self.remote_path, msg["log"])
                if EXPIRED in msg:
                    log.warning(
                        "sshpyk: %s:%s was unmounted by the remote: the local server did not "
                        "answer for %ss (lease_timeout)",
                        self.master.target.alias,
                        self.remote_path,
                        msg[EXPIRED],
                    )
                replaced = replaced or bool(msg.get(REPLACED))
        if self._stopping:
            return
        await self._kill()
        if replaced:
            # another sshpyk (another Jupyter server) mounted the same path since: taking it
            # back would only start a tug of war
            self._set(MountState.FAILED, "replaced by a newer mount of the same remote path")
            log.warning("sshpyk: mount %s was taken over by another mount", self.remote_path)
            return
        log.warning(
            "sshpyk: mount %s:%s lost its stream; mounting again",
            self.master.target.alias,
            self.remote_path,
        )
        self._set(MountState.REMOUNTING)
        for attempt in range(1_000_000):
            await asyncio.sleep(REMOUNT_BACKOFF[min(attempt, len(REMOUNT_BACKOFF) - 1)])
            if self._stopping:
                return
            try:
                await self.master.ensure(timeout=min(10.0, self.timeout))
                await asyncio.wait_for(self._mount(), self.timeout)
            except (SSHPykError, OSError, asyncio.TimeoutError) as e:
                await self._kill()
                self._set(MountState.REMOUNTING, str(e))
                continue
            self._watcher = asyncio.create_task(self._watch())
            return

    # ---- stop --------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Unmount: ending the local server ends the stream, sshfs unmounts on its EOF and
        the remote helper confirms by exiting (which ends the ssh session)."""
        self._stopping = True
        watcher, self._watcher = self._watcher, None
        if self._server and self._server.returncode is None:
            self._server.terminate()
        if self._ssh:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ssh.wait(), STOP_WAIT)
        if watcher and watcher is not asyncio.current_task():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        await self._kill()
        self._set(MountState.UNMOUNTED)

    async def _kill(self) -> None:
        server, ssh = self._server, self._ssh
        self._server = self._ssh = None
        for proc in (server, ssh):
            if proc is not None:
                await kill_process(proc, grace=1.0)


class Mounts:
    """A kernel's mounts: up before its first launch, kept across restarts."""

    def __init__(
        self,
        master: Master,
        prefix: str,
        sshfs: str | None,
        specs: list[dict],
        lease_timeout: float | None = None,
        shared: dict[tuple[str, str], Mount] | None = None,
    ):
        # Mounts in use by this server's kernels, by (host key, remote path): kernels of the
        # same kernelspec (two notebooks) share one mount, which ends with the last of them.
        # The server's ``Runtime.mounts``; the process default runtime's when None.
        self.shared = default_runtime().mounts if shared is None else shared
        self.items = [
            Mount(master, prefix, sshfs, spec, lease_timeout=lease_timeout) for spec in specs
        ]
        self.up = False

    def _share(self, own: Mount) -> Mount:
        key = (own.master.target.key, own.remote_path)
        other = self.shared.get(key)
        if other is None or other.users == 0:
            self.shared[key] = own
            return own
        if (other.local_path, other.options) != (own.local_path, own.options):
            raise MountError(
                f"{own.master.target.alias}:{own.remote_path} is already mounted from "
                f"{other.local_path} for another kernel",
                kind="mount_point_busy",
            )
        return other

    async def start(self, timeout: float) -> None:
        if self.up or not self.items:
            return
        items: list[Mount] = []
        failed: list[tuple[Mount, BaseException]] = []
        for own in self.items:
            try:
                m = self._share(own)
            except MountError as e:
                own._set(MountState.FAILED, str(e))
                failed.append((own, e))
                items.append(own)
                continue
            m.users += 1
            m.timeout = timeout
            items.append(m)
        self.items = items
        starting = [m for m in items if m.users]
        results = await asyncio.gather(*(m.ensure() for m in starting), return_exceptions=True)
        failed += [
            (m, r) for m, r in zip(starting, results, strict=True) if isinstance(r, BaseException)
        ]
        required = [(m, r) for m, r in failed if not m.optional]
        for m, r in failed:
            if m.optional:
                log.warning("sshpyk: optional mount skipped: %s", r)
        self.up = True
        if required:
            await self.stop()
            raise required[0][1]

    async def stop(self) -> None:
        if not self.up:
            return
        self.up = False
        last = []
        for m in self.items:
            if m.users:
                m.users -= 1
                if m.users == 0:
                    last.append(m)
        await asyncio.gather(*(m.stop() for m in last), return_exceptions=True)

    def status(self) -> list[dict[str, Any]]:
        return [m.status() for m in self.items]
