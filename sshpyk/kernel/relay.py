"""The relay channel path (``channels: relay``): the kernel's five channels carried as framed
messages over the kernel's own SSH session, with a journal each way (issue #15).

Local half (this module): sshpyk binds the kernel's five ZeroMQ endpoints on 127.0.0.1 for
Jupyter clients, once per kernel (restarts and reconnects keep them: clients stay
connected), so a client's handshakes never cross the link.  ROUTERs for shell, control,
stdin and hb keep each client's routing identity, which the remote half (``remote/
relay_hub.py``) gives to that client's own DEALERs: the kernel sees every client as its own
peer, and shell and stdin of one client share one identity, so ``input()`` reaches the
client that ran the cell.  iopub is an XPUB whose subscriptions are passed on (the kernel
greets each subscriber); what the kernel publishes before anybody subscribed is held until
somebody does (after a Jupyter server restart, the output made meanwhile is replayed then,
to the first client after the server's own activity watcher: ``reattached``).

The link: after the launcher's "ack" (or ``attach.py``'s "attached"), the monitor session
carries ``relay_wire`` frames both ways; pings, signals and the kernel's exit travel as
frames too.  Client -> kernel messages stay in this journal until the hub acknowledges
them; kernel -> client ones in the hub's.  A new session resumes both from the last
acknowledged seq: nothing lost, nothing twice, in order.  Heartbeats are never journaled,
so only the kernel itself answers a client's heartbeat, and a dead link never looks alive.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

import zmq

from ..remote.protocol import CHANNELS, PORT_NAMES
from ..remote.relay_hub import widen_pipe
from ..remote.relay_journal import JOURNAL_LIMIT, Inbox, Journal
from ..remote.relay_wire import (
    Ack,
    Decoder,
    Exit,
    Hello,
    Msg,
    Ping,
    Pong,
    Resume,
    Signal,
    Skip,
    WireError,
    encode,
)
from ..transport import Master

Log = logging.Logger | logging.LoggerAdapter
BATCH = 256 << 10  # journal bytes written per turn: acks and pings are not kept waiting
ACK_DELAY = 0.05  # seconds: how long an acknowledgement waits for more to come
# iopub messages kept while no client subscribes (after that, clients are there)
HELD_LIMIT = 64 << 20
# a client that stops reading iopub: how many messages wait for it before it loses some
IOPUB_HWM = 100_000
SOCKET_TYPES = {
    "shell": zmq.ROUTER,
    "iopub": zmq.XPUB,
    "stdin": zmq.ROUTER,
    "control": zmq.ROUTER,
    "hb": zmq.ROUTER,
}


class RelayChannels:
    """The relay's local half; the ``ChannelPath`` a ``RemoteKernel`` uses."""

    def __init__(self, alias: str, log: Log, journal_limit: int = JOURNAL_LIMIT):
        self.alias = alias
        self.log = log
        self.journal_limit = journal_limit
        self.local_ports: list[int] | None = None
        self._ctx: zmq.Context | None = None
        self._sockets: dict[str, zmq.Socket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sent_on: set[str] = set()  # sockets sent on since their events were looked at
        # iopub is held (kept, for the subscriber that releases it) until the subscription
        # numbered _release_at arrives; later subscribers get what comes from then on
        self._subscribers = 0
        self._release_at = 1
        self._holding = True
        self._held: collections.deque[list[bytes]] = collections.deque()
        self._held_bytes = 0
        self._new_journals()
        self._stdin: asyncio.StreamWriter | None = None  # the link, while there is one
        self._sent: int | None = None  # the highest seq written on the link
        self._wake = asyncio.Event()

    def _new_journals(self) -> None:
        """A new kernel (a launch or restart): a new remote journal to speak to."""
        self.epoch = secrets.randbits(63) | 1
        self.journal = Journal(self.journal_limit)
        self.inbox = Inbox()
        self.remote_epoch: int | None = None

    # ---- ChannelPath ---------------------------------------------------------------------------
    def ports(self) -> dict[str, int]:
        if self.local_ports is None:
            return {}
        return dict(zip(PORT_NAMES, self.local_ports, strict=True))

    async def open(self, master: Master, remote: dict) -> None:
        """A newly launched kernel: the local endpoints (bound once, kept) and new journals."""
        self._bind()
        self._new_journals()

    async def restore(self, master: Master, remote: dict) -> None:
        """A new master: the link is the next session itself, nothing to restore (unless
        nothing was bound yet: a re-attach)."""
        self._bind()

    async def refused(self) -> bool:
        return False  # no forwarded channel exists to be refused

    async def release(self, master: Master, local_ports: list[int], remote: dict) -> None:
        """Nothing of a previous server's relay survives it."""

    async def close(self, master: Master, *, quiet: bool = False) -> None:
        for sock in self._sockets.values():
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.FD)
            sock.close(linger=0)
        self._sockets = {}
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        self.local_ports = None
        self._held.clear()
        self._held_bytes = 0
        self._subscribers, self._release_at, self._holding = 0, 1, True

    def reattached(self, watchers: int) -> None:
        """A kernel taken up again after a server restart: what it said meanwhile is
        replayed to the first subscriber after ``watchers`` (jupyter_server subscribes one
        of its own to every kernel it starts, to watch activity, before any client can)."""
        self._release_at = self._subscribers + watchers + 1
        self._holding = True

    def info(self) -> dict[str, Any]:
        return {"local_ports": self.local_ports, "forwards": []}

    def load(self, info: dict[str, Any]) -> None:
        self.local_ports = info.get("local_ports")

    # the monitor stream's commands, as frames
    def ping_command(self, n: int) -> bytes:
        return encode(Ping(n))

    def signal_command(self, n: int) -> bytes:
        return encode(Signal(n))

    # ---- the local endpoints -------------------------------------------------------------------
    def _bind(self) -> None:
        if self._sockets:
            return
        # Plain sockets, driven from this loop by their fds: pyzmq's asyncio sockets make a
        # future per send and look at the socket's events after each, and every send here
        # is one that never waits (a ROUTER's, an XPUB's).  With the reused read buffer
        # (divert_stdout), this side's CPU per 100 MB of burst fell from 0.065 to 0.056
        # core-seconds (best of 8, measured alone).
        self._ctx = zmq.Context()
        self._loop = asyncio.get_running_loop()
        wanted = self.local_ports or [None] * len(CHANNELS)
        ports = []
        for channel, want in zip(CHANNELS, wanted, strict=True):
            sock = self._ctx.socket(SOCKET_TYPES[channel])
            sock.linger = 0
            if channel in ("shell", "stdin"):
                sock.router_handover = 1  # as the kernel's own: a reconnecting client wins
            if channel == "iopub":
                sock.sndhwm = IOPUB_HWM
                sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscription, for its greeting
            port = None
            if want:  # a re-attach: the old server's clients know these ports
                with contextlib.suppress(zmq.ZMQError):
                    sock.bind(f"tcp://127.0.0.1:{want}")
                    port = want
            if port is None:
                port = sock.bind_to_random_port("tcp://127.0.0.1")
            self._sockets[channel] = sock
            ports.append(port)
        self.local_ports = ports
        for channel, sock in self._sockets.items():
            self._loop.add_reader(sock.FD, self._from_clients, channel)

    def _from_clients(self, channel: str) -> None:
        """A client's messages into the journal (or, heartbeats and subscriptions, onto the
        link as they come: worthless later).  zmq's fd only says that the socket's state
        may have changed, so every message there is taken, each time."""
        sock = self._sockets.get(channel)
        while sock is not None:
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.ZMQError:  # none left (or closed)
                return
            if channel == "iopub":
                if parts and parts[0][:1] == b"\x01":
                    self._subscriber()
                    self._now(Msg("iopub", b"", 0, parts[:1]))
                continue
            peer, parts = parts[0], parts[1:]
            if channel == "hb":
                self._now(Msg("hb", peer, 0, parts))
                continue
            self.journal.add(channel, peer, parts)
            self._wake.set()

    def _now(self, frame) -> None:
        if self._stdin is not None and self._sent is not None and not self._stdin.is_closing():
            self._stdin.write(encode(frame))

    def _subscriber(self) -> None:
        self._subscribers += 1
        if not self._holding or self._subscribers < self._release_at:
            return
        self._holding = False
        iopub = self._sockets["iopub"]
        while self._held:
            iopub.send_multipart(self._held.popleft())
        self._held_bytes = 0

    def _look_again(self) -> None:
        """After sends: a send may take in what zmq's fd signalled (a client's message), and
        the fd signals no more for it, so each socket sent on is looked at again."""
        loop = self._loop
        for channel in self._sent_on:
            sock = self._sockets.get(channel)
            if sock is not None and sock.getsockopt(zmq.EVENTS) & zmq.POLLIN and loop:
                loop.call_soon(self._from_clients, channel)
        self._sent_on.clear()

    def _deliver(self, msg: Msg) -> None:
        sock = self._sockets.get(msg.channel)
        if sock is None:
            return
        self._sent_on.add(msg.channel)
        # Copied into zmq's own messages (the parts are views of what the link read): a
        # zero-copy send costs more than the copy, as zmq hands each buffer back through
        # pyzmq's garbage thread, which must take the GIL from this loop (20 % of a burst's
        # throughput, measured).
        if msg.channel != "iopub":
            sock.send_multipart([msg.peer, *msg.parts])  # ROUTER: never waits
            return
        if self._subscribers:
            sock.send_multipart(msg.parts)  # XPUB: never waits
        if self._holding:
            # kept for the subscriber that releases it (those already there see it twice:
            # only the server's own activity watcher can be); as bytes, not pinning a read
            self._held.append([bytes(p) for p in msg.parts])
            self._held_bytes += sum(map(len, msg.parts))
            while self._held_bytes > HELD_LIMIT and len(self._held) > 1:
                self._held_bytes -= sum(map(len, self._held.popleft()))

    # ---- the link ----------------------------------------------------------------------------
    async def follow(
        self,
        session,
        on_pong: Callable[[int], None],
        on_data: Callable[[], None] = lambda: None,
    ) -> dict | None:
        """Carry the frames of ``session`` (after its first answer) until it ends: returns
        ``{"exit": code}`` when the hub reports the kernel's end, None when the link ended
        (the kernel lives on: the next session resumes).  ``on_data``: bytes came."""
        self._bind()
        fd = session.stdout_fileno()
        if fd is not None:
            # Linux's 64 KiB default makes ssh and this process take turns in small steps
            widen_pipe(fd)
        stdin, self._sent = session.stdin, None
        self._stdin = stdin
        writer = asyncio.create_task(self._write(stdin))
        loop = asyncio.get_running_loop()
        ended: asyncio.Future = loop.create_future()
        decoder = Decoder()
        late_ack: asyncio.TimerHandle | None = None

        def ack() -> None:
            nonlocal late_ack
            late_ack = None
            if self.inbox.unacked and self._stdin is stdin and not stdin.is_closing():
                stdin.write(encode(self.inbox.ack()))

        def take(data: memoryview) -> None:
            # each chunk as ssh's pipe gives it (no StreamReader in between: see
            # divert_stdout), its messages delivered (so copied: zmq's sends copy, held
            # ones are copied) before the next read reuses the buffer
            nonlocal late_ack
            if ended.done():
                return
            if not data:
                ended.set_result(None)
                return
            on_data()
            try:
                for frame in decoder.feed(data, borrowed=True):
                    done = self._on_frame(frame, on_pong)
                    if done is not None:
                        ended.set_result(done)
                        return
            except Exception as e:  # raised by follow, as a read's would have been
                ended.set_exception(e)
                return
            finally:
                self._look_again()
            if not self.inbox.unacked or self._sent is None:
                return
            # Acknowledged in batches (an ack per read woke ssh, sshd and the hub a few
            # times per message of a burst), and a little later when the stream pauses:
            # the hub sends on without them; they only free its journal.
            if self.inbox.ack_due():
                ack()
            elif late_ack is None:
                late_ack = loop.call_later(ACK_DELAY, ack)

        try:
            await session.divert_stdout(take)
            return await ended
        except WireError as e:
            self.log.warning("sshpyk: the relay stream from %s broke (%s)", self.alias, e)
            with contextlib.suppress(ProcessLookupError):
                session.kill()  # the next session resumes from what was acknowledged
            return None
        finally:
            if not ended.done():
                ended.cancel()  # what the session still says is dropped (take sees it)
            writer.cancel()
            if late_ack is not None:
                late_ack.cancel()
            if self._stdin is stdin:
                self._stdin, self._sent = None, None

    def _on_frame(self, frame, on_pong: Callable[[int], None]) -> dict | None:
        kind = type(frame)
        if kind is Msg or kind is Skip:
            msg = self.inbox.take(frame)
            if msg is not None:
                self._deliver(msg)
        elif kind is Ack:
            self.journal.ack(frame.upto)
        elif kind is Pong:
            on_pong(frame.n)
        elif kind is Hello:
            if self.remote_epoch not in (None, frame.epoch):
                raise WireError("another relay answers on this kernel's link")
            self.remote_epoch = frame.epoch
            # a fresh inbox (this server is new to the kernel) starts where the hub's
            # acknowledged messages end: those went to the server before
            if frame.base > self.inbox.last:
                self.inbox.last = self.inbox.acked = frame.base
        elif kind is Resume:
            self.journal.ack(frame.last)
            self._sent = max(self._sent or 0, frame.last)
            self._wake.set()
        elif kind is Exit:
            return {"exit": frame.code}
        else:
            raise WireError(f"a {kind.__name__} frame is not for the local side")
        return None

    async def _write(self, stdin: asyncio.StreamWriter) -> None:
        """HELLO and RESUME, then the journal's messages as the link takes them."""
        try:
            stdin.write(encode(Hello(self.epoch, self.journal.acked)) + encode(self.inbox.resume()))
            # Not waiting for the hub's RESUME (a round trip): whatever it lacks comes after
            # what it acknowledged, and it drops what it has already (the inbox).
            self._sent = self.journal.acked
            await stdin.drain()
            while True:
                self._wake.clear()
                sent = self._sent
                if sent is not None and sent < self.journal.last_seq:
                    frames, self._sent = self.journal.next_frames(sent, BATCH)
                    stdin.write(b"".join(map(encode, frames)))
                    await stdin.drain()
                    continue
                await self._wake.wait()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return
