"""The relay's wire (issue #15): the frames the local and the remote relay exchange over the
kernel's SSH session; ``relay_journal`` has the journal that keeps each message until the
other side has it, and the inbox that hands each message on once, in order.  This docstring
is the one description of the relay protocol (both modules').

Both sides use this module: the local side imports ``sshpyk.remote.relay_wire``, the remote
relay gets it bundled (``protocol.source``: the prelude, this module, the program).  So:
Python >= 3.8, stdlib only, ASCII, and no ``from __future__`` import (bundled, the text
follows the prelude, where a future import is a syntax error): annotations use ``typing``.

Frames
------
After the line-based handshake each direction of the session carries frames and nothing
else.  A frame is a 5-byte head, then ``size`` bytes of body.  Integers are big-endian
(``struct``), lengths u32, sequence numbers u64::

    head     kind:u8 size:u32
    MSG    1 channel:u8 seq:u64 peer_len:u32 nparts:u32 peer (part_len:u32 part){nparts}
    ACK    2 upto:u64          every seq <= upto of the other direction arrived
    RESUME 3 last:u64          first frame on a new connection: highest seq received in order
    PING   4 n:u64             answered by PONG n (liveness and round-trip time of the link)
    PONG   5 n:u64
    SKIP   6 first:u64 last:u64  seqs first..last were dropped by the sender's bound
    HELLO  7 epoch:u64 base:u64  first frame of each side on a connection (see below)
    SIGNAL 8 n:u64             local -> remote: signal the kernel's process group
    EXIT   9 code:i64          remote -> local: the kernel ended with ``code`` (last frame)

``channel`` indexes ``CHANNELS`` (shell, iopub, stdin, control, hb); ``peer`` is the local
client's routing identity (empty on iopub); the parts are the ZeroMQ message's frames as
they are (routing ids, ``<IDS|MSG>``, signature, header, ...: the relay neither parses nor
re-signs them).  An unknown kind, a body that does not add up, or a size over the decoder's
``max_frame`` (``MAX_FRAME``) is a ``WireError``: the stream cannot be trusted any more, so
the connection is dropped and resumed.

Sequence numbers, acknowledgements, resume
------------------------------------------
A connection starts with HELLO then RESUME from each side; the local side speaks first and
the remote side answers once it has read the local HELLO.  ``epoch`` names the sender's
journal (random, one per local relay and per kernel launch), ``base`` is its ``acked``:
every seq <= base was delivered to somebody.  A side whose peer's epoch changed (the
Jupyter server restarted) starts a new inbox at ``base``; the remote side answers only
after the local HELLO, so the RESUME it sends always counts the current local journal.

Each direction numbers its MSG frames 1, 2, 3, ... when the message is taken from ZeroMQ
(``Journal.add``) and keeps each in its journal until the other side acknowledges it.  The
receiver (``Inbox``) acknowledges every ``ack_every`` messages or ``ack_bytes`` bytes
(``ack_due``), and when idle (``unacked``).  On a new connection each side first sends
RESUME with the highest seq it received in order; the other side takes it as an ACK and
resends ``Journal.replay(last)`` (or, one round trip sooner, resends
``replay(journal.acked)`` at once and acks the RESUME when it comes): nothing lost, and the
inbox drops what it already has (seq <= last), so nothing is duplicated and order is kept.
A seq above ``last + 1`` that nothing announced is a ``WireError``: never a silent loss.
The live path is the same call: the sender writes ``replay(sent)`` (``sent``: the highest
seq written on this connection) as the link takes it, so what the bound drops before it is
written goes as SKIP.  Seq 0 marks a MSG that is not journaled (a heartbeat: replayed later
it would make a dead link look alive): the inbox hands it on as it comes, unordered, unacked.

The bound
---------
A journal holds at most ``limit_bytes`` (256 MiB) of parts.  Past it the oldest droppable
messages are dropped: iopub ``stream``, ``display_data`` and ``update_display_data`` (read
from the Jupyter header, the second frame after ``<IDS|MSG>``).  Everything else (replies,
status, input requests, ...) is never dropped, so a journal holding only those may exceed
its limit.  A dropped message keeps its seq: the journal remembers runs of dropped seqs and
replays each run as one SKIP, in its place, so the receiver tells "nothing lost" (no SKIP)
from "dropped by the bound" (``Inbox.skipped``).  ``Journal.take_dropped`` gives what was
dropped (messages, bytes, the parent header of the last one) so the sender adds ONE
``marker_message`` to iopub (``add(..., keep=True)``): the frontend shows it in the cell
that lost the output.  The counts include messages that were sent but not yet
acknowledged when dropped: they may have arrived after all (the link cut after them).
"""

import struct
from typing import List, NamedTuple, Optional, Union

from ._prelude import CHANNELS  # sshpyk: bundled

# Refuses garbage read as a size before buffering it, yet lets through any sane Jupyter
# message (a plot, a widget's buffers); the relay may pass a smaller one to its Decoder.
MAX_FRAME = 1 << 30
ZERO_COPY = 4096  # a part shorter than this is copied anyway: a view would cost more

_HEAD = struct.Struct(">BI")
_MSG = struct.Struct(">BQII")
_LEN = struct.Struct(">I")


class WireError(Exception):
    """The stream (or the order of its messages) cannot be trusted: drop the connection."""


class Msg(NamedTuple):
    channel: str  # a name of CHANNELS
    peer: bytes  # the local client's routing identity; b"" on iopub
    seq: int
    parts: List[bytes]


class Ack(NamedTuple):
    upto: int


class Resume(NamedTuple):
    last: int


class Ping(NamedTuple):
    n: int


class Pong(NamedTuple):
    n: int


class Skip(NamedTuple):
    first: int
    last: int


class Hello(NamedTuple):
    epoch: int
    base: int


class Signal(NamedTuple):
    n: int


class Exit(NamedTuple):
    code: int  # negative: killed by that signal (as Popen.returncode says it)


Frame = Union[Msg, Ack, Resume, Ping, Pong, Skip, Hello, Signal, Exit]
KINDS = {Msg: 1, Ack: 2, Resume: 3, Ping: 4, Pong: 5, Skip: 6, Hello: 7, Signal: 8, Exit: 9}
_CLASSES = {kind: cls for cls, kind in KINDS.items()}
# the fixed-size frames: their fields, u64 each (EXIT's code is signed)
_FIXED = {
    cls: struct.Struct(">" + ("q" if cls is Exit else "Q") * len(cls._fields))
    for cls in KINDS
    if cls is not Msg
}


# ---- frames ------------------------------------------------------------------------------
def encode(frame: Frame) -> bytes:
    """The bytes of one frame (see the top of this module)."""
    return b"".join(encode_pieces(frame))


def encode_pieces(frame: Frame) -> list:
    """``encode`` as a list of buffers, a message's parts among them as they are: a sender
    that writes them with ``os.writev`` copies no part."""
    kind = KINDS[type(frame)]
    if kind != KINDS[Msg]:
        body = _FIXED[type(frame)].pack(*frame)
        return [_HEAD.pack(kind, len(body)) + body]
    channel = CHANNELS.index(frame.channel)
    pieces = [b"", _MSG.pack(channel, frame.seq, len(frame.peer), len(frame.parts)), frame.peer]
    for part in frame.parts:
        pieces += (_LEN.pack(len(part)), part)
    size = sum(map(len, pieces))
    if size > MAX_FRAME:
        raise WireError(f"a message of {size} bytes is over the relay's limit of {MAX_FRAME}")
    pieces[0] = _HEAD.pack(kind, size)
    return pieces


class Decoder:
    """Frames from a byte stream fed in chunks of any size (a frame may span many)."""

    def __init__(self, max_frame: int = MAX_FRAME):
        self.max_frame = max_frame
        self._pending = bytearray()  # the start of a frame the next chunks complete

    def feed(self, data, borrowed: bool = False) -> List[Frame]:
        """The frames ``data`` completes.  Each byte is copied at most once: a frame that
        came whole within one chunk is read from the chunk itself (a long part is a
        memoryview of it), one that spans chunks from the one buffer it is assembled in.
        ``borrowed``: ``data`` is a buffer its owner reuses once the frames returned have
        been handled, so they must be by then (else a mutable buffer is copied first)."""
        if not borrowed and not isinstance(data, bytes):
            data = bytes(data)  # a mutable buffer could change under the views
        frames: List[Frame] = []
        view = memoryview(data)
        pos = 0
        if self._pending:
            pos = self._complete(view, frames)
            if pos is None:
                return frames
        total = len(view)
        while total - pos >= _HEAD.size:
            cls, size = self._head(view, pos)
            end = pos + _HEAD.size + size
            if total < end:
                break
            frames.append(_decode_body(cls, view, pos + _HEAD.size, end, copy=False))
            pos = end
        if pos < total:
            self._pending = bytearray(view[pos:])
        return frames

    def _head(self, view, pos: int):
        """The class and body size a frame's head at ``pos`` declares, checked from the head
        alone, before waiting for (and holding) the body."""
        kind, size = _HEAD.unpack_from(view, pos)
        if kind not in _CLASSES:
            raise WireError(f"frame kind {kind} is unknown: this is no relay stream")
        if size > self.max_frame:
            raise WireError(f"a frame of {size} bytes is over the limit ({self.max_frame})")
        return _CLASSES[kind], size

    def _complete(self, view: memoryview, frames: List[Frame]) -> Optional[int]:
        """Add what the pending frame lacks from ``view``: where the chunk's own frames
        start, or None when the chunk ended first."""
        buf, pos = self._pending, 0
        if len(buf) < _HEAD.size:
            pos = min(len(view), _HEAD.size - len(buf))
            buf += view[:pos]
            if len(buf) < _HEAD.size:
                return None
        cls, size = self._head(buf, 0)
        take = min(len(view) - pos, _HEAD.size + size - len(buf))
        buf += view[pos : pos + take]
        pos += take
        if len(buf) < _HEAD.size + size:
            return None
        self._pending = bytearray()  # buf is never changed again: views of it stay valid
        frames.append(_decode_body(cls, memoryview(buf), _HEAD.size, len(buf), copy=False))
        return pos


def _decode_body(cls, view: memoryview, pos: int, end: int, copy: bool = True) -> Frame:
    if cls is not Msg:
        fixed = _FIXED[cls]
        if end - pos != fixed.size:
            raise WireError(f"a {cls.__name__} frame of {end - pos} bytes")
        return cls(*fixed.unpack_from(view, pos))
    if end - pos < _MSG.size:
        raise WireError("a MSG frame shorter than its fixed fields")
    channel, seq, peer_len, nparts = _MSG.unpack_from(view, pos)
    pos += _MSG.size
    # the declared counts must fit the body before anything is allocated for them
    if channel >= len(CHANNELS) or peer_len + _LEN.size * nparts > end - pos:
        raise WireError("a MSG frame whose channel or counts do not fit it")
    peer = view[pos : pos + peer_len].tobytes()
    pos += peer_len
    parts = []
    for _ in range(nparts):
        if end - pos < _LEN.size:
            raise WireError("a MSG frame ends inside a part's length")
        (n,) = _LEN.unpack_from(view, pos)
        pos += _LEN.size
        if n > end - pos:
            raise WireError("a MSG frame's part is longer than the frame")
        part = view[pos : pos + n]
        parts.append(part.tobytes() if copy or n < ZERO_COPY else part)
        pos += n
    if pos != end:
        raise WireError("a MSG frame with bytes after its last part")
    return Msg(CHANNELS[channel], peer, seq, parts)
