"""The relay's wire (issue #15): the frames the local and the remote relay exchange over the
kernel's SSH session, the journal that keeps each message until the other side has it, and
the inbox that hands each message on once, in order.  This docstring is the one description
of the relay protocol.

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

import collections
import datetime
import hmac
import json
import struct
import uuid
from typing import List, NamedTuple, Optional, Tuple, Union

from ._prelude import CHANNELS  # sshpyk: bundled

# Refuses garbage read as a size before buffering it, yet lets through any sane Jupyter
# message (a plot, a widget's buffers); the relay may pass a smaller one to its Decoder.
MAX_FRAME = 1 << 30
JOURNAL_LIMIT = 256 << 20
DELIMITER = b"<IDS|MSG>"
ZERO_COPY = 4096  # a part shorter than this is copied anyway: a view would cost more
DROPPABLE = frozenset(("stream", "display_data", "update_display_data"))

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
        self._buf = bytearray()

    def feed(self, data: bytes) -> List[Frame]:
        """The frames ``data`` completes.  A part of a frame that came whole within one
        ``bytes`` chunk is a memoryview of it (no copy); parts assembled from several chunks
        are bytes of their own."""
        if self._buf or not isinstance(data, bytes):
            buf = self._buf
            buf += data
            with memoryview(buf) as view:
                frames, pos = self._frames(view, copy=True)
            del buf[:pos]  # once per feed: a bytearray drops its front without copying
            return frames
        # nothing pending: frames are read from the (immutable) chunk itself
        view = memoryview(data)
        frames, pos = self._frames(view, copy=False)
        self._buf = bytearray(view[pos:])
        return frames

    def _frames(self, view: memoryview, copy: bool) -> Tuple[List[Frame], int]:
        frames, pos, total = [], 0, len(view)
        while total - pos >= _HEAD.size:
            kind, size = _HEAD.unpack_from(view, pos)
            # checked from the head alone, before waiting for (and holding) the body
            if kind not in _CLASSES:
                raise WireError(f"frame kind {kind} is unknown: this is no relay stream")
            if size > self.max_frame:
                raise WireError(f"a frame of {size} bytes is over the limit ({self.max_frame})")
            end = pos + _HEAD.size + size
            if total < end:
                break
            frames.append(_decode_body(_CLASSES[kind], view, pos + _HEAD.size, end, copy))
            pos = end
        return frames, pos


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


# ---- the journal (sender side) -------------------------------------------------------------
def _jupyter_frame(parts: List[bytes], offset: int) -> Optional[dict]:
    """The JSON frame ``offset`` places after ``<IDS|MSG>`` (2: header, 3: parent), or None
    when the message is no Jupyter message (an iopub subscription, say)."""
    try:
        value = json.loads(bytes(parts[parts.index(DELIMITER) + offset]))  # a view, maybe
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def droppable(channel: str, parts: List[bytes]) -> bool:
    """May the bound drop this message? Only iopub output (see the top of this module)."""
    if channel != "iopub":
        return False
    header = _jupyter_frame(parts, 2)
    return header is not None and header.get("msg_type") in DROPPABLE


class Journal:
    """One direction's messages, kept from ``add`` until acknowledged (``ack``)."""

    def __init__(self, limit_bytes: int = JOURNAL_LIMIT):
        self.limit_bytes = limit_bytes
        self.last_seq = 0  # the newest seq given out
        self.acked = 0  # every seq <= acked arrived (and is freed)
        self.pending_bytes = 0  # parts held, the measure of the bound
        # seq -> (Msg, bytes); an OrderedDict pops its oldest and deletes any in O(1)
        self._live = collections.OrderedDict()
        self._droppable = collections.deque()  # seqs of the droppable live ones, oldest first
        self._skips = collections.deque()  # [first, last] runs of dropped seqs, oldest first
        self.dropped = 0  # since the last take_dropped
        self.dropped_bytes = 0
        self.dropped_parent = None  # the parent header of the last one dropped

    def add(self, channel: str, peer: bytes, parts: List[bytes], keep: bool = False) -> Msg:
        """Number a message and keep it; ``keep``: never drop it (the marker)."""
        self.last_seq += 1
        msg = Msg(channel, peer, self.last_seq, list(parts))
        nbytes = sum(map(len, msg.parts))
        self._live[msg.seq] = (msg, nbytes)
        self.pending_bytes += nbytes
        if not keep and droppable(channel, msg.parts):
            self._droppable.append(msg.seq)
        # this one included: the bound is kept even when the newest is what passes it
        while self.pending_bytes > self.limit_bytes and self._droppable:
            self._drop(self._droppable.popleft())
        return msg

    def _drop(self, seq: int) -> None:
        msg, nbytes = self._live.pop(seq)
        self.pending_bytes -= nbytes
        # drops go oldest first, so a run grows at its end or a new one starts after it
        if self._skips and self._skips[-1][1] == seq - 1:
            self._skips[-1][1] = seq
        else:
            self._skips.append([seq, seq])
        self.dropped += 1
        self.dropped_bytes += nbytes
        self.dropped_parent = _jupyter_frame(msg.parts, 3)

    def withdraw(self, seq: int) -> None:
        """Take back the kept message ``seq`` (a marker the other side never got, replaced
        by a newer one): it goes as a SKIP, and does not count as dropped output."""
        _, nbytes = self._live.pop(seq)
        self.pending_bytes -= nbytes
        runs = list(self._skips)
        runs.append([seq, seq])
        runs.sort()
        self._skips = collections.deque(runs)

    def take_dropped(self) -> Optional[Tuple[int, int, dict]]:
        """(messages, bytes, parent header of the last one) dropped since the last call, or
        None: what one ``marker_message`` reports."""
        if not self.dropped:
            return None
        taken = (self.dropped, self.dropped_bytes, self.dropped_parent or {})
        self.dropped, self.dropped_bytes, self.dropped_parent = 0, 0, None
        return taken

    def ack(self, upto: int) -> None:
        """Every seq <= upto arrived: free them (an older ack changes nothing)."""
        if upto > self.last_seq:
            raise WireError(f"ack of seq {upto}, but only {self.last_seq} were sent")
        if upto <= self.acked:
            return
        self.acked = upto
        while self._live and next(iter(self._live)) <= upto:
            self.pending_bytes -= self._live.popitem(last=False)[1][1]
        while self._droppable and self._droppable[0] <= upto:
            self._droppable.popleft()
        while self._skips and self._skips[0][0] <= upto:
            if self._skips[0][1] <= upto:
                self._skips.popleft()
            else:
                self._skips[0][0] = upto + 1

    def replay(self, after: int, max_bytes: Optional[int] = None) -> List[Frame]:
        """What to send after seq ``after`` (a RESUME's ``last``, or what was written on
        this connection): every kept message with seq > after and a SKIP for each run
        dropped, in seq order; with ``max_bytes``, the first of them, at least one message,
        up to about that many bytes.  Seqs are consecutive, so each is looked up, never
        searched for: a sender refilling as the link takes them costs what it sends, however
        much is waiting behind."""
        if after > self.last_seq:
            # the other side heard of messages this journal never had: another relay's
            raise WireError(f"resume after seq {after}, but only {self.last_seq} were sent")
        seq = max(after, self.acked) + 1  # acknowledged ones are gone, and were had
        frames, total = [], 0
        runs = iter(self._skips)
        run = None
        while seq <= self.last_seq:
            entry = self._live.get(seq)
            if entry is not None:
                msg, nbytes = entry
                if max_bytes is not None and total and total + nbytes > max_bytes:
                    break
                frames.append(msg)
                total += nbytes
                seq += 1
                continue
            # neither kept nor acknowledged: dropped, in a run (runs are sorted)
            while run is None or run[1] < seq:
                run = next(runs, None)
                if run is None:
                    break
            if run is None or run[0] > seq:
                raise WireError(f"seq {seq} is neither kept nor dropped")
            frames.append(Skip(seq, run[1]))
            seq = run[1] + 1
        return frames

    def next_frames(self, sent: int, max_bytes: int) -> Tuple[List[Frame], int]:
        """A sender's refill: ``replay(sent, max_bytes)`` and the seq it reaches (what is
        left when none comes was acknowledged already: the sender is past it too)."""
        frames = self.replay(sent, max_bytes)
        if not frames:
            return frames, self.last_seq
        last = frames[-1]
        return frames, last.last if type(last) is Skip else last.seq


# ---- the inbox (receiver side) -------------------------------------------------------------
class Inbox:
    """Takes one direction's MSG and SKIP frames: each message once, in order."""

    def __init__(self, ack_every: int = 64, ack_bytes: int = 1 << 20):
        self.ack_every, self.ack_bytes = ack_every, ack_bytes
        self.last = 0  # the highest seq received in order: what RESUME says
        self.acked = 0  # the highest seq acknowledged to the sender
        self.skipped = 0  # messages the sender's bound dropped (announced by SKIP)
        self._bytes = 0  # bytes taken since the last acknowledgement

    def take(self, frame: Union[Msg, Skip]) -> Optional[Msg]:
        """The message to deliver now, or None: a duplicate (a replay overlapping what had
        arrived) or a SKIP.  A seq beyond the next one, unannounced, is a WireError."""
        if type(frame) is Msg and frame.seq == 0:
            return frame  # not journaled (a heartbeat): as it comes
        first, last = (frame.first, frame.last) if type(frame) is Skip else (frame.seq,) * 2
        if first > last:
            raise WireError(f"SKIP of seqs {first}..{last}")
        if last <= self.last:
            return None
        if first > self.last + 1:
            raise WireError(f"seq {first} follows {self.last}: messages lost unannounced")
        if type(frame) is Skip:
            self.skipped += last - self.last
            self.last = last
            return None
        self.last = last
        self._bytes += sum(map(len, frame.parts))
        return frame

    @property
    def unacked(self) -> int:
        """Messages taken and not acknowledged yet (ack them when the link goes idle)."""
        return self.last - self.acked

    def ack_due(self) -> bool:
        return self.unacked >= self.ack_every or self._bytes >= self.ack_bytes

    def ack(self) -> Ack:
        self.acked, self._bytes = self.last, 0
        return Ack(self.last)

    def resume(self) -> Resume:
        """The first frame on a new connection (it acknowledges too)."""
        self.acked, self._bytes = self.last, 0
        return Resume(self.last)


# ---- the marker --------------------------------------------------------------------------
def _size(nbytes: int) -> str:
    if nbytes < 1000:
        return f"{nbytes} bytes"
    value = float(nbytes)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


def _json(obj) -> bytes:
    # as jupyter_client packs, with str() for what JSON has no type for (a parsed date)
    return json.dumps(obj, ensure_ascii=False, default=str).encode("utf8", "surrogateescape")


def sign(key: bytes, signature_scheme: str, frames: List[bytes]) -> bytes:
    """The hex HMAC jupyter_client's Session puts before header, parent, metadata, content
    (b"" with no key: the connection is then unsigned)."""
    if not key:
        return b""
    scheme, _, digest = signature_scheme.partition("-")
    if scheme != "hmac" or not digest:
        raise ValueError(f"signature scheme {signature_scheme!r} is not hmac-<digest>")
    h = hmac.new(key, digestmod=digest)
    for frame in frames:
        h.update(frame)
    return h.hexdigest().encode()


def marker_message(
    session_key: bytes, signature_scheme: str, parent_header: dict, dropped: int, nbytes: int
) -> List[bytes]:
    """The iopub parts of a signed ``stream`` message (stderr) saying what the bound dropped;
    ``parent_header`` (the last dropped one's) puts it in the cell that lost the output."""
    noun, verb = ("message", "was") if dropped == 1 else ("messages", "were")
    text = f"[sshpyk: {dropped} {noun} ({_size(nbytes)}) of output {verb} dropped"
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": "stream",
        "username": "sshpyk",
        "session": uuid.uuid4().hex,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "version": "5.3",
    }
    content = {"name": "stderr", "text": text + " while the link was down]\n"}
    frames = [_json(header), _json(parent_header or {}), _json({}), _json(content)]
    # the topic ipykernel gives stderr output; clients subscribe to everything anyway
    return [b"stream.stderr", DELIMITER, sign(session_key, signature_scheme, frames), *frames]
