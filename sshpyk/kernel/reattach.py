"""Taking a running kernel up again: the half of ``RemoteKernel`` that re-attaches.

A kernel a previous Jupyter server started (``_attach``, from its registry record), and a
kernel whose monitor stream ended (``_recover``: the master died, the link went down) are
taken up the same way: a fresh monitor session runs ``remote/attach.py`` next to the
kernel's nanny (``_take_up``), the channels are restored on a new master, and the kernel
goes on where it was.  Meanwhile it lives on its lease there.  When the host wants a login
to come back, the kernel waits for one without asking (``_login_needed``); when its
allocation ended (a Slurm job's time limit), the backend says why and it is over.
"""

from __future__ import annotations

import asyncio
import contextlib

from ..errors import RemoteLaunchError, SSHPykError
from ..registry import Record
from ..remote import protocol
from ..states import TunnelState as S
from ..transport import LOGIN_KINDS, kill_process

LOGIN_POLL = 1.0  # seconds between looks for a login (a master) when one is needed
# how long a new monitor of a running kernel may take to answer
ATTACH_ANSWER = 15.0


class Reattach:
    """Mixed into ``RemoteKernel`` (remote_kernel.py), whose state it shares."""

    async def _attach(self, rec: Record) -> None:
        """Take up a kernel a previous Jupyter server started (see ``Runtime.expect_attach``)."""
        timeout = float(self.cfg.launch_timeout)
        self._step("connecting")
        await self.master.ensure(timeout=timeout, login=self.login)
        self._step("re-attaching")
        self._exited = asyncio.Event()
        self._exit_code = None
        self.backend.adopt(rec.remote)
        self.channels.local_ports = rec.local_ports
        if rec.local_ports:
            # the old server's forwards may still be on a surviving master: free the ports
            await self.channels.release(self.master, rec.local_ports, rec.remote)
        # open the channels in any case, but never end a connection: which one the kernel's
        # old monitor used is unknown here, and it may serve other kernels
        self._master_identity = None
        reply = await self._take_up(rec.remote, drop_stale=False)
        if "attached" not in reply:
            raise RemoteLaunchError(
                f"kernel {rec.kernel_id} on {self.alias!r} is no longer running", kind="gone"
            )
        self.remote = dict(rec.remote)
        self.started_at = rec.started_at
        if self.mounts.items and not self.mounts.up:
            await self.mounts.start(timeout=timeout)
        self._connected()

    async def _read(self, session) -> dict | None:
        """The next message of a session; the launcher's pid is remembered on the way."""
        while True:
            msg = await protocol.read_message(session.stdout)
            if msg is None or protocol.SHELL_PID not in msg:
                return msg
            self._launcher_pid = int(msg[protocol.SHELL_PID])

    async def _recover(self) -> None:
        """The monitor stream ended: reconnect and take the kernel up with a new monitor."""
        if self.watchdog.state != S.LOST:
            self.watchdog.move(S.RECONNECTING, "connection lost")
        delay = 0.25
        try:
            while self.remote is not None and not self._exited.is_set():
                try:
                    await self.master.ensure(timeout=min(10.0, float(self.cfg.launch_timeout)))
                    reply = await self._take_up(self.remote)
                except (SSHPykError, asyncio.TimeoutError, OSError, ValueError) as e:
                    if getattr(e, "kind", None) in LOGIN_KINDS:
                        await self._login_needed()  # no more tries to log in without it
                        continue
                    ended = await self._why_ended()
                    if ended:  # its allocation ended (a time limit...): nothing to reach
                        self.allocation_ended = ended
                        self._ended(-1, ended)
                        return
                    self.watchdog.overdue()
                    self.log.debug("sshpyk: reconnect to %s: %s", self.alias, e)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if "attached" not in reply:
                    # it ended while we were away: tell the restarter
                    code = reply.get("exit")
                    self._ended(int(code) if code is not None else -1, "exited while disconnected")
                    return
                self._recovery = None
                self._connected()
                self.log.info("sshpyk: kernel %s re-attached", self.kernel_id)
                return
        finally:
            if self._recovery is asyncio.current_task():
                self._recovery = None

    async def _why_ended(self) -> str | None:
        with contextlib.suppress(SSHPykError, asyncio.TimeoutError, OSError):
            return await self.backend.why_ended(self.master)
        return None

    async def _login_needed(self) -> None:
        """The host wants a login the kernel cannot make (the master ended: sleep, a network
        change, logout): wait, asking nothing of the host, until a login makes the master
        (``sshpyk login``, or Lab's "login needed" button); the kernel lives on its lease."""
        self.watchdog.move(S.LOGIN_NEEDED, f"log in to {self.alias}")
        while self.remote is not None and not self._exited.is_set():
            if await self.master.is_alive():  # `ssh -O check`: no connection, no question
                self.watchdog.move(S.RECONNECTING, "logged in again")
                return
            await asyncio.sleep(LOGIN_POLL)

    async def _take_up(self, remote: dict, drop_stale: bool = True) -> dict:
        """A new monitor for a running kernel (``remote/attach.py``), channels restored if
        the master is a new one.  Returns its first message."""
        # Compared by identity, not by this process's count of masters: any sshpyk process
        # (a second server, `sshpyk ps`) may have replaced the master meanwhile.
        stale = self.master.identity != self._master_identity
        if stale:
            await self.channels.restore(self.master, remote)
        session = await self.master.open_session(
            self.backend.command(self.cfg.remote_python_prefix)
        )
        try:
            session.stdin.write(
                protocol.program_stdin(
                    "attach", {"rundir": remote["rundir"], "drop_stale": stale and drop_stale}
                )
            )
            await session.stdin.drain()
            reply = await asyncio.wait_for(self._read(session), ATTACH_ANSWER)
        except BaseException:
            await kill_process(session)
            raise
        if reply is not None and reply.get("error") in ("elsewhere", "unverified"):
            await kill_process(session)  # another host's kernel (shared $HOME): never ours
            raise SSHPykError(reply["message"], kind=reply["error"])
        if reply is None or ("error" in reply and reply["error"] != "gone"):
            err = (await session.stderr.read()).decode(errors="replace") if reply is None else ""
            await kill_process(session)
            raise SSHPykError(f"re-attach failed: {reply or err.strip()[-300:]}", kind="attach")
        if "attached" in reply and await self.channels.refused():
            await kill_process(session)
            self._master_identity = None  # the next attempt opens every channel again
            raise SSHPykError(
                f"a forwarded channel of kernel {self.kernel_id} is refused", kind="forward_failed"
            )
        if "attached" in reply:
            self._session = session
            self._monitor = asyncio.create_task(self._watch(session))
        else:
            await kill_process(session)
        return reply
