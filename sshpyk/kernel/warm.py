"""A restart's launcher, kept warm.

jupyter_client tells the provisioner a restart is coming (``shutdown_requested``) before
it shuts the old kernel down.  The new launcher's session opens then, and its program goes
ahead: the remote python starts, compiles it and waits for its parameters.  The restart
itself then costs no session set-up (a round trip on the connection) and no program
start-up, only its parameters (``protocol.params_line``) and the kernel's own start.
"""

from __future__ import annotations

import asyncio

from ..errors import SSHPykError
from ..remote import protocol
from ..sessions import abandon_session
from ..transport import Master, kill_process


class WarmLauncher:
    def __init__(self) -> None:
        self._task: asyncio.Task | None = None

    def open(self, master: Master, command: str) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._open(master, command))

    @staticmethod
    async def _open(master: Master, command: str):
        session = await master.open_session(command)
        try:
            session.stdin.write(protocol.program_head("launcher"))
            await session.stdin.drain()  # the host reads it as its python starts
        except (ConnectionError, RuntimeError):
            await kill_process(session)
            return None
        except BaseException:  # cancelled (dropped, or the restart timed out)
            await kill_process(session)
            raise
        return master, session

    async def take(self, master: Master):
        """The warm session, if it is one of ``master`` and alive (else it is ended)."""
        task, self._task = self._task, None
        if task is None:
            return None
        try:
            got = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()  # the launch gave up (its timeout): the session goes too
            raise
        except (SSHPykError, OSError):
            return None
        if got is None:
            return None
        owner, session = got
        if owner is master and session.returncode is None:
            return session
        await abandon_session(owner, session)
        return None

    async def drop(self) -> None:
        """Not needed after all: its launcher ends at EOF, before reading any parameter."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            got = await task
        except (asyncio.CancelledError, SSHPykError, OSError):
            return
        if got is not None:
            await abandon_session(*got)
