"""The relay's remote half (issue #15): the kernel's nanny (``launcher.py``) runs a ``Hub``
when the kernelspec says ``channels: relay``.

The kernel listens on ipc sockets only, in its private (0700) directory; the hub is its one
peer there.  It connects an XSUB to iopub (subscribed to everything, from the start, so the
journal holds what the kernel says while no client listens) and, for each local client
(``peer``: its routing identity), a DEALER per channel with that identity, so the kernel
sees every client as its own peer and routes ``input_request`` to the client that ran the
cell.  Heartbeats go to the kernel and back unjournaled: only the kernel answers them.

Everything the kernel sends is numbered and kept in the journal (``relay_wire``) until the
local side acknowledges it; the link that carries the frames is the kernel's SSH session:
the launch session after "ack" (``nanny.relay_session``), or later an ``attach.py``
session.  Either hands its stdin and stdout to the hub over the hub's unix socket
(``RELAY_SOCKET`` in the kernel's 0700 socket directory; ``hand_over``), so the hub reads
and writes the session itself: no process copies the relay's bytes in between.  A new link
replaces the old one (a half-open connection that never said goodbye).  The journal
outlives links: the next one resumes where the local side's acknowledgements stopped.

One thread, one poller (zmq's, which also polls the link's fds): the kernel's messages are
drained into the journal as fast as they come, and written to the link as fast as it takes
them, never blocking on it.
"""

import array
import collections
import contextlib
import itertools
import os
import random
import socket
import struct
import time

from ._prelude import CHANNELS, RELAY_SOCKET, kill_group  # sshpyk: bundled
from .relay_journal import Inbox, Journal, marker_message  # sshpyk: bundled
from .relay_wire import (  # sshpyk: bundled
    ZERO_COPY,
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
    encode_pieces,
)

# refill the link's buffer from the journal when it holds less than this; a small buffer
# keeps pongs (and so the measured round trip) close to the link's own latency
OUT_LOW = 256 << 10
READ_SIZE = 256 << 10
DRAIN = 2000  # messages taken from one socket per turn, so no channel starves the others
MAX_PEERS = 256  # per channel; the least recently used one goes first
# how long the exit report may take to reach the local side before the hub gives up
EXIT_FLUSH = 5.0
FD_SIZE = array.array("i").itemsize


def _iov_max():
    try:
        return max(16, min(512, os.sysconf("SC_IOV_MAX")))
    except (ValueError, OSError):
        return 16  # the least POSIX allows


IOV_BATCH = _iov_max()  # buffers per writev
TRIM_AFTER = 8 << 20  # journal bytes held, after which an empty journal trims the heap
PIPE_SIZE = 1 << 20  # a session pipe's buffer (Linux's default 64 KiB costs throughput)


def trim_heap():
    """glibc keeps freed memory in its heap; a burst's 100 MB would stay counted."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: its allocator returns memory its own way


def widen_pipe(fd):
    """Best effort: a bigger buffer for a pipe (Linux), fewer round trips through poll."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except (OSError, ImportError, ValueError):
        pass


class Outbox:
    """What a link has yet to write: buffers (a message's parts from zmq's own memory),
    written with ``writev``: no part is copied on its way to the session."""

    def __init__(self):
        self.pieces = collections.deque()
        self.size = 0

    def __len__(self):
        return self.size

    def add(self, *pieces):
        self.pieces.extend(pieces)
        self.size += sum(map(len, pieces))

    def write(self, fd):
        n = os.writev(fd, list(itertools.islice(self.pieces, IOV_BATCH)))
        self.size -= n
        pieces = self.pieces
        while n:
            head = pieces[0]
            if len(head) <= n:
                n -= len(head)
                pieces.popleft()
            else:
                pieces[0] = memoryview(head)[n:]
                n = 0


class Link:
    """One connection to the local side."""

    def __init__(self, rfd, wfd, closer):
        self.rfd, self.wfd, self.closer = rfd, wfd, closer
        widen_pipe(wfd)
        self.decoder = Decoder()
        self.out = Outbox()
        self.sent = None  # the highest seq written; None until the local RESUME came
        os.set_blocking(wfd, False)

    def close(self):
        with contextlib.suppress(OSError):
            self.closer()


class Hub:
    def __init__(self, ip, ports, key, signature_scheme, journal_limit, sockets):
        import zmq  # pyzmq comes with jupyter_client, which the launch has checked

        self.zmq = zmq
        self.ctx = zmq.Context()
        self.endpoints = {c: f"ipc://{ip}-{p}" for c, p in zip(CHANNELS, ports)}
        self.key, self.scheme = key.encode(), signature_scheme
        self.epoch = random.SystemRandom().getrandbits(63) | 1
        self.journal = Journal(journal_limit)
        self.inbox = Inbox()
        self.peer_epoch = None
        self.peers = collections.OrderedDict()  # (channel, peer) -> DEALER, oldest first
        self.owner = {}  # DEALER -> (channel, peer)
        self.poller = zmq.Poller()
        self.sub = self.ctx.socket(zmq.XSUB)
        self.sub.rcvhwm = 0  # drained into the journal, which has the bound
        self.sub.connect(self.endpoints["iopub"])
        self.sub.send(b"\x01")  # everything, whoever listens locally
        self.poller.register(self.sub, zmq.POLLIN)
        self.path = os.path.join(sockets, RELAY_SOCKET)
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(self.path)  # in the 0700 directory: for this user alone
        self.listener.listen(4)
        self.poller.register(self.listener.fileno(), zmq.POLLIN)
        self.wake_r, self.wake_w = os.pipe()
        self.poller.register(self.wake_r, zmq.POLLIN)
        self.link = None
        self.exit_code = None
        self.told = False  # the exit report was written to a link
        self.pgid = None
        self.marker_due = 0.0
        self.held = 0  # the most journal bytes held since the heap was last trimmed
        self.markers = {}  # seq -> (messages, bytes, parent) of markers not yet acknowledged

    # ---- links -----------------------------------------------------------------------------
    def attach(self, link):
        self.detach()
        self.link = link
        self.poller.register(link.rfd, self.zmq.POLLIN)

    def detach(self):
        link, self.link = self.link, None
        if link is not None:
            self.poller.unregister(link.rfd)
            if link.wfd != link.rfd:
                with contextlib.suppress(KeyError):
                    self.poller.unregister(link.wfd)
            link.close()

    @property
    def linked(self):
        return self.link is not None

    def accept(self):
        """A session's process hands its stdin and stdout over (``hand_over``), with what
        it read of stdin already; the connection stays open until the link ends."""
        conn, _ = self.listener.accept()
        conn.settimeout(5.0)  # a local process of this user; it sends at once
        fds = array.array("i")
        try:
            head, ancillary, _, _ = conn.recvmsg(4, socket.CMSG_SPACE(2 * FD_SIZE))
            for level, kind, payload in ancillary:
                if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS):
                    fds.frombytes(payload[: len(payload) - len(payload) % FD_SIZE])
            if len(head) != 4 or len(fds) != 2:
                raise OSError("not a session hand-over")
            (size,) = struct.unpack(">I", head)
            data = b""
            while len(data) < size:
                chunk = conn.recv(size - len(data))
                if not chunk:
                    raise OSError("the hand-over ended early")
                data += chunk
        except OSError:
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        rfd, wfd = fds

        def closer():
            for fd in (rfd, wfd):
                with contextlib.suppress(OSError):
                    os.close(fd)
            conn.close()  # the session's process sees EOF and ends: so does the session

        self.attach(Link(rfd, wfd, closer))
        if data:
            self.feed(data)

    def want_write(self):
        link = self.link
        flags = self.zmq.POLLIN | self.zmq.POLLOUT if link.out else self.zmq.POLLIN
        if link.wfd == link.rfd:
            self.poller.register(link.rfd, flags)
        elif link.out:
            self.poller.register(link.wfd, self.zmq.POLLOUT)
        else:
            with contextlib.suppress(KeyError):
                self.poller.unregister(link.wfd)

    def send_now(self, frame):
        """A control frame, after what is queued already."""
        self.link.out.add(encode(frame))

    def fill(self):
        """Queue journaled messages the link has not had, while its buffer is low."""
        link = self.link
        if link is None or link.sent is None:
            return
        while len(link.out) < OUT_LOW and link.sent < self.journal.last_seq:
            frames, link.sent = self.journal.next_frames(link.sent, OUT_LOW)
            for frame in frames:
                link.out.add(*encode_pieces(frame))

    def write(self):
        link = self.link
        try:
            link.out.write(link.wfd)
        except BlockingIOError:
            return
        except OSError:
            self.detach()
            return
        self.fill()

    def read(self):
        link = self.link
        try:
            data = os.read(link.rfd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.detach()
            return
        self.feed(data)

    def feed(self, data):
        link = self.link
        try:
            for frame in link.decoder.feed(data):
                self.on_frame(frame)
                if self.link is not link:
                    return
        except WireError:
            self.detach()
            return
        if self.inbox.unacked and link.sent is not None:
            self.send_now(self.inbox.ack())

    # ---- frames from the local side ------------------------------------------------------------
    def on_frame(self, frame):
        kind = type(frame)
        if kind is Msg or kind is Skip:
            msg = self.inbox.take(frame)
            if msg is not None:
                self.deliver(msg)
        elif kind is Ack:
            self.acked(frame.upto)
        elif kind is Ping:
            self.send_now(Pong(frame.n))
        elif kind is Signal:
            if self.pgid is not None and self.exit_code is None:
                kill_group(self.pgid, frame.n)
        elif kind is Hello:
            if frame.epoch != self.peer_epoch:  # a new local side: its journal starts anew
                self.inbox = Inbox()
                self.inbox.last = self.inbox.acked = frame.base
                self.peer_epoch = frame.epoch
            self.send_now(Hello(self.epoch, self.journal.acked))
            self.send_now(self.inbox.resume())
        elif kind is Resume:
            self.acked(frame.last)
            # a new local side resumes from 0, though it has what was acknowledged before
            self.link.sent = max(frame.last, self.journal.acked)
            self.add_marker(resumed=True)
            self.fill()
        else:
            raise WireError(f"a {kind.__name__} frame is not for the remote side")

    def acked(self, upto):
        self.journal.ack(upto)
        for seq in [s for s in self.markers if s <= upto]:
            del self.markers[seq]  # delivered
        self.held = max(self.held, self.journal.pending_bytes)
        if not self.journal.pending_bytes and self.held > TRIM_AFTER:
            # a burst has gone: give its memory back to the system, not only to the heap
            self.held = 0
            trim_heap()

    def deliver(self, msg):
        if msg.channel == "iopub":
            # a local subscription: passed on, so the kernel greets the new subscriber
            if msg.parts and msg.parts[0][:1] == b"\x01":
                self.sub.send(msg.parts[0])
            return
        if msg.channel == "shell":
            # The kernel sends a cell's input_request on stdin to the identity that sent the
            # cell on shell: that peer's stdin must be connected before the cell runs (a
            # client only writes on stdin to answer).
            self.dealer("stdin", msg.peer)
        self.dealer(msg.channel, msg.peer).send_multipart(msg.parts)

    def dealer(self, channel, peer):
        sock = self.peers.get((channel, peer))
        if sock is not None:
            self.peers.move_to_end((channel, peer))
            return sock
        zmq = self.zmq
        sock = self.ctx.socket(zmq.DEALER)
        sock.identity = peer
        sock.sndhwm = 0  # requests wait in the kernel's queue, never dropped here
        sock.linger = 0
        sock.connect(self.endpoints[channel])
        self.peers[(channel, peer)] = sock
        self.owner[sock] = (channel, peer)
        self.poller.register(sock, zmq.POLLIN)
        same = [k for k in self.peers if k[0] == channel]
        if len(same) > MAX_PEERS:
            old = self.peers.pop(same[0])
            self.poller.unregister(old)
            del self.owner[old]
            old.close()
        return sock

    # ---- messages from the kernel ---------------------------------------------------------------
    def take(self, sock):
        zmq = self.zmq
        channel, peer = self.owner.get(sock, ("iopub", b""))
        for _ in range(DRAIN):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            # big parts (over relay_wire's ZERO_COPY) stay in zmq's buffers: no copy until
            # they are written to the link
            parts = [f.buffer if len(f) > ZERO_COPY else f.bytes for f in frames]
            if channel == "hb":  # never journaled: a late echo would fake a live link
                if self.link is not None and self.link.sent is not None:
                    self.send_now(Msg("hb", peer, 0, parts))
                continue
            self.journal.add(channel, peer, parts)
        if self.journal.dropped and self.link is not None:
            self.add_marker()

    def add_marker(self, resumed=False):
        """One visible line for what the bound dropped (at most once a second while a link
        lasts).  ``resumed``: a new link; markers the old one never delivered (a dead link
        looks alive until the next one comes) are withdrawn into this one: one marker per
        gap, counting everything."""
        now = time.monotonic()
        if now < self.marker_due and not resumed:
            return
        dropped = self.journal.take_dropped()
        count, nbytes, parent = dropped or (0, 0, {})
        if resumed:
            for seq in [s for s in self.markers if s > self.journal.acked]:
                old_count, old_bytes, old_parent = self.markers.pop(seq)
                self.journal.withdraw(seq)
                count, nbytes = count + old_count, nbytes + old_bytes
                parent = parent or old_parent
        if count:
            parts = marker_message(self.key, self.scheme, parent, count, nbytes)
            msg = self.journal.add("iopub", b"", parts, keep=True)
            self.markers[msg.seq] = (count, nbytes, parent)
            self.marker_due = now + 1.0

    # ---- the loop ---------------------------------------------------------------------------
    def kernel_exited(self, code):
        """From the nanny's main thread: the kernel ended with ``code``."""
        self.exit_code = code
        os.write(self.wake_w, b"x")

    def run(self, pgid):
        """Relay until the kernel has exited and that was told to a link (or nobody was
        linked to tell).  Links come from the sessions' hand-overs (``accept``)."""
        self.pgid = pgid
        zmq = self.zmq
        deadline = None
        while True:
            if self.link is not None:
                self.want_write()
            events = self.poller.poll(200 if deadline else 1000)
            for sock, _ in events:
                if sock == self.wake_r:
                    os.read(self.wake_r, 64)
                    deadline = time.monotonic() + EXIT_FLUSH
                elif sock == self.listener.fileno():
                    self.accept()
                elif isinstance(sock, int):
                    # a link's fd (this one's, or a replaced one's): after the kernel's
                    # messages, which are what is written
                    continue
                else:
                    self.take(sock)
            wrote = False
            for sock, ev in events:
                link = self.link
                if link is None or sock not in (link.rfd, link.wfd):
                    continue
                # POLLERR (a hang-up) too: the read or write that follows sees the end,
                # else poll would report it again at once, forever
                if ev & (zmq.POLLIN | zmq.POLLERR) and sock == link.rfd:
                    self.read()
                if self.link is link and ev & (zmq.POLLOUT | zmq.POLLERR) and link.out:
                    self.write()
                    wrote = True
            self.fill()
            if not wrote and self.link is not None and self.link.out:
                # what just came goes out now if the session takes it, not after one more
                # poll to learn that it would (half the polls of a burst)
                self.write()
            if deadline is not None:
                if self.link is None or time.monotonic() > deadline:
                    return
                link = self.link
                if link.sent is not None and link.sent >= self.journal.last_seq and not link.out:
                    self.send_now(Exit(self.exit_code))
                    self.told = self.flush()
                    return

    def flush(self):
        """Write what is queued (at most EXIT_FLUSH): the last words.  Whether all went."""
        link = self.link
        end = time.monotonic() + EXIT_FLUSH
        while link.out and time.monotonic() < end:
            try:
                link.out.write(link.wfd)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                return False
        return not link.out

    def close(self):
        self.detach()
        self.listener.close()
        self.ctx.destroy(linger=0)
        for fd in (self.wake_r, self.wake_w):
            os.close(fd)
