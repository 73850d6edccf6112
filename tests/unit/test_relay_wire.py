"""The relay's wire and journal (sshpyk.remote.relay_wire and relay_journal): frames, the
journal and its bound, the inbox, the dropped-output marker (checked by a real jupyter_client
Session), and that the modules travel to the host bundled like the prelude.  Pure logic: no
ssh, no sockets."""

from __future__ import annotations

import ast
import json
import random
from pathlib import Path

import pytest
from jupyter_client.session import Session

import sshpyk.remote
from sshpyk.remote import protocol, relay_journal, relay_wire
from sshpyk.remote.relay_journal import DELIMITER, Inbox, Journal, marker_message
from sshpyk.remote.relay_wire import (
    Ack,
    Decoder,
    Msg,
    Ping,
    Pong,
    Resume,
    Skip,
    WireError,
    encode,
)

REMOTE = Path(sshpyk.remote.__file__).parent
KEY = b"0123456789abcdef-secret"
SESSION = Session(key=KEY, signature_scheme="hmac-sha256", username="test")


def jupyter(msg_type: str, text: str = "x", channel: str = "iopub", parent: dict | None = None):
    """The ZeroMQ parts of a real signed Jupyter message (topic first on iopub)."""
    msg = SESSION.msg(msg_type, {"name": "stdout", "text": text}, parent=parent or {})
    parts = SESSION.serialize(msg)
    return ([b"kernel.x." + msg_type.encode()] if channel == "iopub" else [b"peer"]) + parts


EVERY_KIND = [
    Msg("shell", b"\x00\x80\x00A\x12", 1, [b"client", DELIMITER, b"sig", b"{}", b"", b"\xff"]),
    Msg("iopub", b"", 2**64 - 1, []),
    Msg("hb", b"p", 7, [b""]),
    Ack(0),
    Ack(12345678901234),
    Resume(99),
    Ping(3),
    Pong(3),
    Skip(4, 9),
]


# ---- frames ---------------------------------------------------------------------------------
@pytest.mark.parametrize("frame", EVERY_KIND, ids=lambda f: type(f).__name__)
def test_every_kind_round_trips(frame):
    data = encode(frame)
    assert Decoder().feed(data) == [frame]
    assert len(encode(Ack(1))) == 5 + 8  # the head is small and fixed


def _in_random_chunks(data: bytes, rng: random.Random, least: int, most: int) -> list:
    """What a new decoder makes of ``data`` fed in chunks of random sizes (it must hold
    nothing back at the end)."""
    dec, got, pos = Decoder(), [], 0
    while pos < len(data):
        step = rng.randrange(least, most)
        got += dec.feed(data[pos : pos + step])
        pos += step
    assert not dec._pending
    return got


def test_a_stream_decodes_the_same_byte_by_byte_and_in_random_chunks():
    rng = random.Random(15)
    frames = EVERY_KIND + [
        Msg("iopub", b"", n, [rng.randbytes(rng.randrange(0, 3000)) for _ in range(n % 5)])
        for n in range(1, 40)
    ]
    data = b"".join(map(encode, frames))
    dec = Decoder()
    assert [f for b in data for f in dec.feed(bytes([b]))] == frames
    for _ in range(20):
        assert _in_random_chunks(data, rng, 0, 700) == frames


def test_big_parts_are_views_of_the_chunk_or_of_the_one_buffer_a_frame_spans_into():
    """Each byte is copied at most once: a big part of a frame that came whole in a chunk
    is a view of that chunk; one of a frame that spanned chunks, of the buffer it was
    assembled in; in random chunks too, the stream decodes the same."""
    rng = random.Random(16)
    frames = [Msg("iopub", b"", n, [b"h" * 10, rng.randbytes(9000 + n)]) for n in range(1, 30)]
    data = b"".join(map(encode, frames))
    one = len(encode(frames[0]))
    first = data[: one + 100]  # the first frame whole, the next one begun
    dec = Decoder()
    (whole,) = dec.feed(first)
    assert isinstance(whole.parts[1], memoryview) and whole.parts[1].obj is first
    assert isinstance(whole.parts[0], bytes)  # small parts are copied: cheaper than a view
    (spanned,) = dec.feed(data[one + 100 : 2 * one + 1])
    assert spanned == frames[1] and spanned.parts[1].obj not in (first, data)
    for _ in range(20):
        assert _in_random_chunks(data, rng, 1, 30000) == frames


def test_a_borrowed_buffer_may_be_reused_once_its_frames_are_handled():
    """The local side reads ssh's pipe into one buffer, reused by every read: frames taken
    from it are handled (copied) before the next read, and a frame begun in one read and
    completed in the next must not change when the buffer is overwritten in between."""
    rng = random.Random(17)
    frames = [
        Msg("iopub", b"", n, [b"t", rng.randbytes(rng.randrange(1, 20000))]) for n in range(1, 60)
    ]
    data = b"".join(map(encode, frames))
    buf = bytearray(7000)
    dec, got, pos = Decoder(), [], 0
    while pos < len(data):
        n = min(len(buf), len(data) - pos, rng.randrange(1, len(buf) + 1))
        buf[:n] = data[pos : pos + n]
        pos += n
        got += [copy_msg(f) for f in dec.feed(memoryview(buf)[:n], borrowed=True)]
        buf[:] = b"\xee" * len(buf)  # the next read's bytes: nothing decoded may see them
    assert got == frames and not dec._pending


def copy_msg(frame: Msg) -> Msg:
    """What handling a message does with its parts (zmq's sends copy them)."""
    return Msg(frame.channel, bytes(frame.peer), frame.seq, [bytes(p) for p in frame.parts])


def test_a_frame_over_the_limit_is_refused_from_its_head_alone(monkeypatch):
    monkeypatch.setattr(relay_wire, "MAX_FRAME", 1000)
    with pytest.raises(WireError, match="over the relay's limit"):
        encode(Msg("shell", b"", 1, [b"x" * 2000]))  # the sender knows before writing it
    monkeypatch.undo()
    dec = Decoder(max_frame=1000)
    big = encode(Msg("shell", b"", 1, [b"x" * 2000]))
    with pytest.raises(WireError, match="over the limit"):
        dec.feed(big[:5])  # refused before its body is waited for or held
    assert len(Decoder(max_frame=1000).feed(encode(Msg("shell", b"", 1, [b"x" * 900])))) == 1


@pytest.mark.parametrize(
    "data",
    [
        b"SSHPYK {}\n",  # a line of the handshake is no frame
        bytes([2, 0, 0, 0, 4]) + b"\0" * 4,  # an ACK of 4 bytes
        bytes([1, 0, 0, 0, 17]) + bytes([9]) + b"\0" * 16,  # channel 9
        # a part count the body cannot hold (refused before any list is made)
        bytes([1, 0, 0, 0, 17]) + bytes([0]) + b"\0" * 8 + b"\0\0\0\0" + b"\xff\xff\xff\xff",
    ],
)
def test_malformed_frames_are_refused(data):
    with pytest.raises(WireError):
        Decoder().feed(data)


def test_a_part_longer_than_its_frame_and_trailing_bytes_are_refused():
    good = bytearray(encode(Msg("shell", b"", 1, [b"abc"])))
    long_part = bytearray(good)
    long_part[22:26] = (9).to_bytes(4, "big")  # after the head (5) and fixed fields (17)
    with pytest.raises(WireError, match="longer"):
        Decoder().feed(bytes(long_part))
    trailing = good + b"z"
    trailing[1:5] = (len(trailing) - 5).to_bytes(4, "big")
    with pytest.raises(WireError, match="after its last part"):
        Decoder().feed(bytes(trailing))


# ---- the journal ----------------------------------------------------------------------------
def test_the_journal_numbers_keeps_until_acked_and_replays_in_order():
    j = Journal()
    sent = [j.add("shell", b"peer", [b"m%d" % i]) for i in range(1, 6)]
    assert [m.seq for m in sent] == [1, 2, 3, 4, 5] and j.pending_bytes == 10
    j.ack(2)
    assert j.replay(2) == sent[2:] and j.pending_bytes == 6
    assert j.replay(4) == sent[4:]
    j.ack(1)  # an older ack changes nothing
    assert j.acked == 2 and j.replay(2) == sent[2:]
    j.ack(5)
    assert j.replay(5) == [] and j.pending_bytes == 0
    with pytest.raises(WireError):
        j.ack(6)
    with pytest.raises(WireError):
        j.replay(6)  # a RESUME from another journal's numbers


def test_the_bound_drops_the_oldest_output_and_never_a_reply_or_status():
    status = jupyter("status", channel="iopub")
    size = lambda parts: sum(map(len, parts))  # noqa: E731
    out = [jupyter("stream", f"line {i}", parent={"msg_id": f"cell{i}"}) for i in range(4)]
    reply = jupyter("execute_reply", channel="shell")
    j = Journal(limit_bytes=size(out[0]) * 3 + size(status) + size(reply) + 10)
    j.add("iopub", b"", out[0])  # 1
    j.add("iopub", b"", status)  # 2
    j.add("iopub", b"", out[1])  # 3
    j.add("shell", b"peer", reply)  # 4
    j.add("iopub", b"", out[2])  # 5
    assert j.take_dropped() is None
    j.add("iopub", b"", jupyter("display_data"))  # 6: passes the bound, drops 1
    j.add("iopub", b"", out[3])  # 7: drops 3
    assert j.pending_bytes <= j.limit_bytes
    frames = j.replay(0)
    assert frames[0] == Skip(1, 1) and frames[2] == Skip(3, 3)
    assert [f.seq for f in frames if type(f) is Msg] == [2, 4, 5, 6, 7]
    dropped, nbytes, parent = j.take_dropped()
    assert (dropped, nbytes) == (2, size(out[0]) + size(out[1]))
    assert parent["msg_id"] == "cell1"  # the last dropped one's parent
    assert j.take_dropped() is None  # counted once, for one marker
    # adjacent drops are one run; an ack trims runs; a replay clips them at `after`
    j.add("iopub", b"", jupyter("stream", "y" * (size(out[0]) // 2)))  # 8: drops 5 and 6
    assert [f for f in j.replay(0) if type(f) is Skip] == [Skip(1, 1), Skip(3, 3), Skip(5, 6)]
    assert Skip(6, 6) in j.replay(5)
    j.ack(5)
    assert j.replay(5)[0] == Skip(6, 6)


def test_undroppable_messages_may_pass_the_bound():
    j = Journal(limit_bytes=100)
    for _ in range(5):
        j.add("shell", b"peer", [b"x" * 60])
        j.add("iopub", b"", [b"not jupyter"])  # a subscription: never parsed as output
        j.add("iopub", b"", jupyter("status"))
    j.add("iopub", b"", jupyter("stream", "y" * 200))  # the newest goes when nothing else can
    assert j.pending_bytes > 100 and j.take_dropped()[0] == 1
    assert not any(type(f) is Skip for f in j.replay(0)[:-1])
    assert j.replay(0)[-1] == Skip(16, 16)


def test_a_kept_message_is_never_dropped():
    j = Journal(limit_bytes=10)
    marker = marker_message(KEY, "hmac-sha256", {}, 3, 3000)
    j.add("iopub", b"", marker, keep=True)
    assert j.take_dropped() is None and j.replay(0)[0].parts == marker


# ---- the inbox ------------------------------------------------------------------------------
def test_the_inbox_takes_each_message_once_and_refuses_an_unannounced_gap():
    box = Inbox(ack_every=2, ack_bytes=10**9)
    m = [Msg("iopub", b"", i, [b"."]) for i in range(1, 8)]
    assert box.take(m[0]) == m[0] and box.take(m[0]) is None
    assert not box.ack_due()
    assert box.take(m[1]) == m[1] and box.ack_due() and box.ack() == Ack(2)
    assert box.unacked == 0 and not box.ack_due()
    assert box.take(Skip(2, 4)) is None and box.last == 4 and box.skipped == 2
    assert box.take(m[3]) is None  # inside the skip: already accounted for
    assert box.take(m[4]) == m[4]
    assert box.resume() == Resume(5) and box.unacked == 0
    with pytest.raises(WireError, match="unannounced"):
        box.take(m[6])
    with pytest.raises(WireError):
        Inbox().take(Skip(3, 2))


def test_a_message_of_seq_0_is_handed_on_as_it_comes():
    box = Inbox()
    box.take(Msg("shell", b"p", 1, [b"."]))
    beat = Msg("hb", b"p", 0, [b"ping"])
    assert box.take(beat) == beat and box.take(beat) == beat  # not journaled: no order
    assert (box.last, box.unacked) == (1, 1)


def test_the_inbox_acks_by_bytes_too():
    box = Inbox(ack_every=1000, ack_bytes=100)
    box.take(Msg("iopub", b"", 1, [b"x" * 60]))
    assert not box.ack_due()
    box.take(Msg("iopub", b"", 2, [b"x" * 60]))
    assert box.ack_due()


def relay(
    rng: random.Random, journal: Journal, inbox: Inbox, sends: list, reconnect: float = 0.2
) -> list[Msg]:
    """Pushes ``sends`` (channel, parts) through ``journal`` to ``inbox`` over a connection
    cut at random points: the bytes after the cut are lost (half a frame too), acks going
    back are lost now and then; a new connection starts with RESUME and replay.  Returns
    what the inbox delivered, in the order it did."""
    delivered: list[Msg] = []
    up, sent_upto, to_receiver = True, 0, Decoder()

    def deliver(data: bytes):
        nonlocal up, to_receiver
        cut = rng.random() < 0.05
        if cut:
            data = data[: rng.randrange(len(data) + 1)]
        pos = 0
        while pos < len(data):  # the stream arrives in pieces
            step = rng.randrange(1, 4000)
            for f in to_receiver.feed(data[pos : pos + step]):
                msg = inbox.take(f)
                if msg is not None:
                    delivered.append(msg)
                if inbox.ack_due() or rng.random() < 0.05:
                    ack = Decoder().feed(encode(inbox.ack()))
                    if rng.random() > 0.1:  # else lost on the way back
                        journal.ack(ack[0].upto)
            pos += step
        if cut:
            up, to_receiver = False, Decoder()

    def connect():
        nonlocal up, sent_upto, to_receiver
        up, to_receiver = True, Decoder()
        (resume,) = Decoder().feed(encode(inbox.resume()))
        # either wait for the RESUME, or (one round trip sooner) replay at once all that is
        # unacknowledged: the inbox drops what it already has
        after = resume.last if rng.random() < 0.5 else journal.acked
        sent_upto = journal.last_seq
        deliver(b"".join(map(encode, journal.replay(after))))
        journal.ack(resume.last)

    for channel, parts in sends:
        msg = journal.add(channel, b"", parts)
        if up:
            # what the bound dropped before it was sent goes as SKIP, then the new one
            deliver(b"".join(map(encode, journal.replay(sent_upto))))
            sent_upto = msg.seq
        elif rng.random() < reconnect:  # per message sent while the link is down
            connect()
    while True:
        connect()
        if up:
            return delivered


@pytest.mark.parametrize("seed", range(30))
def test_a_cut_connection_delivers_every_message_once_and_in_order(seed):
    rng = random.Random(seed)
    channels = protocol.CHANNELS
    sends = [
        (rng.choice(channels), [b"%d" % i, rng.randbytes(rng.randrange(50))]) for i in range(400)
    ]
    journal, inbox = Journal(), Inbox(ack_every=rng.randrange(1, 20), ack_bytes=5000)
    got = relay(rng, journal, inbox, sends)
    assert [(m.channel, m.parts) for m in got] == sends
    assert [m.seq for m in got] == list(range(1, 401)) and inbox.skipped == 0
    journal.ack(inbox.ack().upto)
    assert journal.pending_bytes == 0 and journal.replay(400) == []


@pytest.mark.parametrize("seed", range(20))
def test_past_the_bound_only_output_is_lost_and_the_receiver_knows_how_much(seed):
    rng = random.Random(seed)
    kinds = ["stream", "display_data", "status", "execute_reply", "execute_input"]
    sends = []
    for i in range(300):
        kind = rng.choice(kinds)
        channel = "shell" if kind == "execute_reply" else "iopub"
        sends.append((channel, jupyter(kind, f"{i}:" + "x" * rng.randrange(300), channel)))
    journal = Journal(limit_bytes=rng.randrange(2000, 10000))
    inbox = Inbox(ack_every=rng.randrange(1, 20), ack_bytes=5000)
    got = relay(rng, journal, inbox, sends, reconnect=0.03)  # long outages: the bound hits
    kept = [(m.channel, m.parts) for m in got]
    assert kept == [s for s in sends if s in kept]  # in order, each once
    assert len(kept) + inbox.skipped == len(sends)  # every loss announced
    for channel, parts in sends:
        if not relay_journal.droppable(channel, parts):
            assert (channel, parts) in kept


# ---- the marker -----------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["hmac-sha256", "hmac-sha512", "hmac-md5"])
def test_the_marker_is_a_signed_stream_message_jupyter_client_accepts(scheme):
    parent = {"msg_id": "cell-7", "msg_type": "execute_request", "session": "s", "date": "x"}
    parts = marker_message(KEY, scheme, parent, 1234, 56_700_000)
    idents, rest = Session(key=KEY, signature_scheme=scheme).feed_identities(parts)
    msg = Session(key=KEY, signature_scheme=scheme).deserialize(rest)  # checks the hmac
    assert idents == [b"stream.stderr"]  # the topic ipykernel gives stderr
    assert msg["msg_type"] == "stream" and msg["parent_header"]["msg_id"] == "cell-7"
    assert msg["content"] == {
        "name": "stderr",
        "text": "[sshpyk: 1234 messages (56.7 MB) of output were dropped while the link was "
        "down]\n",
    }
    with pytest.raises(ValueError, match="Invalid Signature"):
        Session(key=b"another key", signature_scheme=scheme).deserialize(rest)


def test_the_marker_without_a_key_and_in_small_numbers():
    parts = marker_message(b"", "hmac-sha256", {}, 1, 512)
    msg = Session(key=b"").deserialize(parts[2:])
    assert msg["content"]["text"].startswith("[sshpyk: 1 message (512 bytes) of output was ")
    assert json.loads(parts[4]) == {}  # no parent: the frontend shows it wherever it can
    with pytest.raises(ValueError):
        marker_message(KEY, "rsa-sha256", {}, 1, 1)


# ---- travelling to the host -----------------------------------------------------------------
def test_the_module_is_ascii_and_compiles_for_python_3_8():
    text = (REMOTE / "relay_wire.py").read_text()
    assert text.isascii()
    tree = ast.parse(text, feature_version=(3, 8))
    assert not [
        n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "__future__"
    ]
    # the stdlib only, and from the package only what the prelude gives
    imports = {
        a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names
    }
    froms = {(n.level, n.module) for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert imports <= {"collections", "datetime", "hmac", "json", "struct", "uuid"}
    assert froms == {(0, "typing"), (1, "_prelude")}


def test_the_existing_programs_travel_as_before():
    prelude = protocol.BUNDLED.sub("", (REMOTE / "_prelude.py").read_text())
    for name in ("attach", "mount"):
        program = protocol.BUNDLED.sub("", (REMOTE / f"{name}.py").read_text())
        assert protocol.source(name) == prelude + "\n\n" + program
    # running ends a container whose nanny is gone (container.py)
    container = protocol.BUNDLED.sub("", (REMOTE / "container.py").read_text())
    program = protocol.BUNDLED.sub("", (REMOTE / "running.py").read_text())
    assert protocol.source("running") == "\n\n".join([prelude, container, program])
    # the launcher carries the container's command, the nanny and, for channels: relay, the
    # relay's remote half (each bundled module after those it bundles itself)
    bundled = ("container", "relay_wire", "relay_journal", "relay_hub", "nanny")
    texts = [(REMOTE / f"{m}.py").read_text() for m in bundled]
    program = (REMOTE / "launcher.py").read_text()
    expected = "\n\n".join(protocol.BUNDLED.sub("", x) for x in [prelude, *texts, program])
    assert protocol.source("launcher") == expected


def test_source_bundles_relay_wire_between_the_prelude_and_the_program(monkeypatch):
    program = (
        "import sys\n"
        "from ._prelude import CHANNELS, emit  # sshpyk: bundled\n"
        "from .relay_wire import (  # sshpyk: bundled\n"
        "    Decoder,\n"
        "    Ping,\n"
        "    encode,\n"
        ")\n"
        "RESULT = (Decoder().feed(encode(Ping(3))), CHANNELS)\n"
    )
    real = protocol._text
    monkeypatch.setattr(protocol, "_text", lambda n: program if n == "relay" else real(n))
    sent = protocol.source("relay")
    assert sent.isascii() and "# sshpyk: bundled" not in sent
    assert sent.startswith(real("_prelude"))
    assert sent.endswith("\n\nimport sys\nRESULT = (Decoder().feed(encode(Ping(3))), CHANNELS)\n")
    assert sent.count("class Decoder") == 1 and sent.index("def emit") < sent.index("class Decoder")
    ast.parse(sent, feature_version=(3, 8))
    scope: dict = {"__name__": "sshpyk-relay"}
    exec(compile(sent, "sshpyk-relay", "exec"), scope)  # noqa: S102 - what the loader does
    assert scope["RESULT"] == ([scope["Ping"](3)], protocol.CHANNELS)


def test_relay_wire_shadows_nothing_the_prelude_defines():
    names = lambda n: {  # noqa: E731
        t.id if isinstance(t, ast.Name) else t.name
        for node in ast.parse((REMOTE / f"{n}.py").read_text()).body
        for t in (node.targets if isinstance(node, ast.Assign) else [node])
        if isinstance(t, (ast.Name, ast.FunctionDef, ast.ClassDef))
    }
    assert not names("relay_wire") & names("_prelude")
    assert not names("relay_journal") & (names("_prelude") | names("relay_wire"))


def _reference_replay(journal: Journal, after: int, max_bytes: int | None) -> list:
    """What replay must give, the slow obvious way: every kept message and dropped run
    after ``after`` (and after what was acknowledged), in order, cut to the byte budget
    after at least one message."""
    start = max(after, journal.acked)
    frames = [Skip(max(a, start + 1), b) for a, b in journal._skips if b > start]
    frames += [m for s, (m, _) in journal._live.items() if s > start]
    frames.sort(key=lambda f: f.first if type(f) is Skip else f.seq)
    out, total = [], 0
    for f in frames:
        if type(f) is not Skip:
            n = sum(map(len, f.parts))
            if max_bytes is not None and total and total + n > max_bytes:
                break
            total += n
        out.append(f)
    return out


@pytest.mark.parametrize("seed", range(200))
def test_replay_is_the_obvious_one_whatever_was_added_dropped_or_acknowledged(seed):
    r = random.Random(seed)
    journal = Journal(limit_bytes=r.choice([3000, 1 << 30]))
    for _ in range(r.randint(1, 80)):
        op = r.random()
        if op < 0.6:
            kind = r.choice(["stream", "status", "display_data", "execute_reply"])
            journal.add("iopub", b"", jupyter(kind, "y" * r.randint(1, 1500)))
        elif op < 0.8 and journal.last_seq:
            journal.ack(r.randint(journal.acked, journal.last_seq))
        else:
            after = r.randint(0, journal.last_seq)
            budget = r.choice([None, 500, 3000])
            assert journal.replay(after, budget) == _reference_replay(journal, after, budget)


def test_parts_held_as_views_are_read_as_well():
    """The hub keeps big parts as views of zmq's buffers: a big header is one of them."""
    parts = jupyter("stream", "x")
    i = parts.index(DELIMITER)
    header = json.loads(parts[i + 2])
    header["pad"] = "p" * 10_000
    parts[i + 2] = memoryview(json.dumps(header).encode())
    assert relay_journal.droppable("iopub", parts)
