"""The relay's journal and inbox (issue #15): the sender keeps each message until the other
side acknowledges it, the receiver hands each on once, in order; and the one visible marker
for what the journal's bound dropped.  The protocol they keep is described at the top of
``relay_wire``; bundled the same way (after it), so the same rules: Python >= 3.8, stdlib
only, ASCII, no ``from __future__`` import.
"""

import collections
import datetime
import hmac
import json
import uuid
from typing import List, Optional, Tuple, Union

from .relay_wire import Ack, Frame, Msg, Resume, Skip, WireError  # sshpyk: bundled

JOURNAL_LIMIT = 256 << 20
DELIMITER = b"<IDS|MSG>"
DROPPABLE = frozenset(("stream", "display_data", "update_display_data"))


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
        # seqs of the live iopub ones, oldest first: the ones the bound may drop, once their
        # header says so (read only when the bound needs room: a JSON parse per message
        # was a tenth of the hub's Python in a burst)
        self._droppable = collections.deque()
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
        if not keep and channel == "iopub":
            self._droppable.append(msg.seq)
        # this one included: the bound is kept even when the newest is what passes it
        while self.pending_bytes > self.limit_bytes and self._droppable:
            seq = self._droppable.popleft()
            if droppable("iopub", self._live[seq][0].parts):
                self._drop(seq)
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
