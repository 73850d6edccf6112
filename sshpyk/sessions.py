"""Remote programs on a host's sessions: ``start_program`` is the one place that decides
when a program moves to the host's next connection (sshd's MaxSessions filled one) and
whether a program travels whole or by the name the host keeps it under (``Kept``), and
``abandon_session`` ends a session whose program never got its "ack".  The connections
themselves are ``transport.Master``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import registry
from .errors import RemoteLaunchError, SSHConnectError, SSHPykError
from .localproc import kill_process
from .remote.protocol import (
    ERROR,
    PROGRAM_MISSING,
    SHELL_PID,
    program_sha256,
    program_stdin,
    read_message,
)
from .transport import Master

# what a mux client says when the host refused a session on a full connection
SESSION_REFUSED = "open refused"


def session_refused(stderr: str) -> bool:
    """Whether ssh's words say the host refused a session on a full connection."""
    return SESSION_REFUSED in stderr.lower() or "administratively prohibited" in stderr.lower()


# ---- programs the hosts keep ---------------------------------------------------------------


class Kept:
    """Which programs each host keeps (``protocol.LOADER``: the loader stores a program it is
    sent to keep, in the user's home there): a program that ran whole once goes by its
    sha256 after that.  Remembered in ``store`` (a file of this user's private runtime
    directory) too, so a new Jupyter server does not send a 26 kB launcher over a slow link
    again (70 ms at +150 ms RTT).  A host that answers ``program_missing`` (its copy removed,
    or a home it cannot write) gets whole programs from then on, so an unwritable home costs
    no round trip per launch; unless only the store said it kept the program: then the
    store was stale (a pruned copy, a new home), and the next whole one is kept again."""

    # by the host's ``Target.key``: its shards (and its masters over time) share one home

    def __init__(self, store: Callable[[], Path] | None = None) -> None:
        self._store = store
        self._kept: set[tuple[str, str]] | None = None  # (host, sha256): the store's and ours
        self._ran: set[str] = set()  # hosts this process saw run a program whole
        self._refused: set[str] = set()

    def has(self, master: Master, name: str) -> bool:
        host = master.target.key
        return host not in self._refused and (host, program_sha256(name)) in self._read()

    def ran(self, master: Master, name: str) -> None:
        host = master.target.key
        self._ran.add(host)
        entry = (host, program_sha256(name))
        if entry in self._read():
            return
        self._kept.add(entry)
        if self._store is not None:
            with contextlib.suppress(OSError):
                fd = os.open(self._store(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                with os.fdopen(fd, "a") as f:
                    f.write(f"{entry[0]}\t{entry[1]}\n")  # one short append: never torn

    def missing(self, master: Master) -> None:
        host = master.target.key
        if host in self._ran:
            self._refused.add(host)  # it ran here and is gone: this home does not keep
        self._kept = {entry for entry in self._read() if entry[0] != host}

    def _read(self) -> set[tuple[str, str]]:
        if self._kept is None:
            self._kept = set()
            with contextlib.suppress(OSError, UnicodeDecodeError):
                if self._store is not None:
                    for line in self._store().read_text().splitlines():
                        host, _, sha = line.partition("\t")
                        if host and len(sha) == 64:
                            self._kept.add((host, sha))
        return self._kept


KEPT = Kept(store=lambda: registry.directory() / "kept-programs")


# ---- the session-shard policy ---------------------------------------------------------------


@dataclass
class ProgramStart:
    """How a remote program's start went (see ``start_program``)."""

    master: Master  # where the session is: the given master, or one of its next shards
    session: Any  # the ssh mux client (asyncio Process); already ended when reply is None
    reply: dict | None  # the program's first message other than shell_pid; None: no answer
    stderr: str  # what ssh said (read when there was no reply; "" otherwise)
    shell_pid: int | None  # the program's remote pid, to kill it should it hang


async def start_program(
    master: Master,
    command: str,
    stdin: bytes | None,
    *,
    move: bool,
    timeout: float,
    on_message: Callable[[dict], None] | None = None,
    open_session: Callable[[Master], Awaitable[Any]] | None = None,
    spare: Any = None,
    kill_by_pid: bool = True,
    program: tuple[str, dict] | None = None,
) -> ProgramStart:
    """Start a remote program in a session of ``master`` and read its first answer.

    The ONE session-shard policy (sshd's MaxSessions, 10 by default, limits the sessions of
    one connection): when the host refuses the session and ``move`` is true, the program is
    started on the host's next connection (``Master.next_shard``, made with ``ensure``
    within ``timeout``), up to ``SHARDS``.  A kernel being restarted passes ``move=False``:
    it stays on the connection that holds its forwards.

    ``stdin`` (the program and its parameters, see ``protocol.program_stdin``) is written to
    the session.  ``open_session(master)`` replaces ``master.open_session(command)`` for a
    session whose stdio is a data stream (a mount): its program reports on stderr (see
    ``protocol.python_command``), and ssh's own words are the other lines there.
    ``on_message`` sees every message as it arrives (``shell_pid`` ones included).
    ``spare``: a session of ``master`` opened ahead (a launcher kept warm for a restart):
    used first, with ``stdin`` written to it as it is.  ``kill_by_pid=False``: the pid the
    program reports is not on the ssh host (a Slurm node), so a hung one is never killed by
    it there (its session's end ends it).

    A session without an answer is ended here (``abandon_session``; with ``open_session``,
    killed); so is the session of a start that fails or is cancelled.  Otherwise the caller
    owns ``ProgramStart.session``; ``ProgramStart.master`` tells whether it moved.

    ``program`` (``(name, params)``, instead of ``stdin``): ``remote/<name>.py`` with its
    parameters, by its sha256 where the host keeps it (``Kept``), else whole; a host that
    has lost it gets it whole in a new session at once."""

    async def end(master: Master, session, shell_pid: int | None) -> None:
        if open_session is None:
            await abandon_session(master, session, shell_pid if kill_by_pid else None)
        else:  # a data stream: its program ends with the stream, no pid to kill
            await kill_process(session, grace=1.0)

    kept = False
    while True:
        if program is not None:
            kept = KEPT.has(master, program[0])
            stdin = program_stdin(*program, kept=kept, keep=not kept)
        if spare is not None:
            session, spare = spare, None
        elif open_session is None:
            session = await master.open_session(command)
        else:
            session = await open_session(master)
        shell_pid: int | None = None
        noise: deque[str] = deque(maxlen=21)  # ssh's last words, when it reports on stderr
        try:
            if stdin is not None:
                try:
                    session.stdin.write(stdin)
                    await session.stdin.drain()
                except (ConnectionError, BrokenPipeError):
                    pass  # the session ended at once (refused: MaxSessions); stderr says why
            reports = session.stdout if session.stdout is not None else session.stderr
            while True:
                reply = await read_message(reports, on_noise=noise.append)
                if reply is not None and on_message is not None:
                    on_message(reply)
                if reply is None or SHELL_PID not in reply:
                    break
                shell_pid = int(reply[SHELL_PID])
            if kept and reply is not None and reply.get(ERROR) == PROGRAM_MISSING:
                KEPT.missing(master)  # the loader has ended: the program goes whole
                await end(master, session, shell_pid)
                continue
            if reply is not None:
                if program is not None and ERROR not in reply:
                    # it ran, so the loader has it now (a shell's error comes before it)
                    KEPT.ran(master, program[0])
                return ProgramStart(master, session, reply, "", shell_pid)
            if reports is session.stderr:
                err = "\n".join(noise)
            else:
                err = (await session.stderr.read()).decode(errors="replace")
        except BaseException:
            await end(master, session, shell_pid)
            raise
        await end(master, session, shell_pid)
        # The host allows no more sessions on this connection: the program goes to the
        # host's next one.
        nxt = master.next_shard() if move and session_refused(err) else None
        if nxt is None:
            return ProgramStart(master, session, None, err, shell_pid)
        master = nxt
        await master.ensure(timeout=timeout)


async def abandon_session(master: Master, session, shell_pid: int | None = None) -> None:
    """End a session whose program never got its "ack": closing its stdin tells a launcher
    to kill its kernel and exit; one that does not within a second is killed by its pid."""
    if session.stdin:
        session.stdin.close()
    try:
        await asyncio.wait_for(session.wait(), 1.0)
        return
    except asyncio.TimeoutError:
        pass
    if shell_pid:
        with contextlib.suppress(SSHPykError, asyncio.TimeoutError, OSError):
            await master.run(f"kill -9 {int(shell_pid)}", timeout=5)
    await kill_process(session)


def session_failure(alias: str, stderr: str) -> SSHPykError:
    """What a launcher's session that ended without an answer means, from ssh's words."""
    if session_refused(stderr):
        return SSHConnectError(
            f"{alias!r} refused another ssh session (sshd's MaxSessions "
            "is reached on every connection sshpyk may open): raise MaxSessions there",
            kind="sessions_exhausted",
            detail=stderr,
        )
    if "ProxyCommand" in stderr or "Connection closed by UNKNOWN" in stderr:
        return SSHConnectError(
            f"the connection to {alias!r} was lost during the launch",
            kind="unreachable",
            detail=stderr,
        )
    return RemoteLaunchError(
        f"the remote launcher on {alias!r} ended without an answer: "
        f"{stderr.strip()[-500:] or 'no output'}",
        kind="launcher_failed",
        detail=stderr,
    )
