"""The relay's remote half (``sshpyk.remote.relay_hub``) against a stand-in kernel: real
ZeroMQ sockets on ipc in a temporary directory, links handed over as the sessions hand
theirs (``hand_over``, SCM_RIGHTS), frames read and written as the local side would.  No
ssh: the hub's logic, end to end on one machine."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest
import zmq

from sshpyk.remote import _prelude, relay_hub
from sshpyk.remote.relay_journal import DELIMITER
from sshpyk.remote.relay_wire import (
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
    encode,
)

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")


class Kernel:
    """The kernel's five sockets, as ipykernel binds them."""

    def __init__(self, tmp_path):
        self.ctx = zmq.Context()
        self.ip = str(tmp_path / "k")
        kinds = {"shell": zmq.ROUTER, "iopub": zmq.XPUB, "stdin": zmq.ROUTER}
        kinds.update(control=zmq.ROUTER, hb=zmq.ROUTER)
        self.socks = {}
        for n, name in enumerate(CHANNELS, 1):
            s = self.ctx.socket(kinds[name])
            s.linger = 0
            s.bind(f"ipc://{self.ip}-{n}")
            s.rcvtimeo = 5000
            self.socks[name] = s
        self.ports = list(range(1, 6))

    def subscribed(self):
        """Wait for the hub's subscription (so nothing published is lost)."""
        assert self.socks["iopub"].recv() == b"\x01"

    def publish(self, msg_type: str, text: str = "", parent: dict | None = None):
        header = json.dumps({"msg_type": msg_type, "msg_id": text}).encode()
        content = json.dumps({"text": text}).encode()
        parts = [b"topic", DELIMITER, b"sig", header, json.dumps(parent or {}).encode()]
        self.socks["iopub"].send_multipart([*parts, b"{}", content])

    def close(self):
        self.ctx.destroy(linger=0)


class Local:
    """The local side of one link: a socket pair end, frames in and out."""

    def __init__(self, hub_path, epoch=7, base=0, last=0, data=b""):
        self.sock, theirs = socket.socketpair()
        conn = _prelude.hub_connection(hub_path)
        fd = theirs.fileno()
        assert _prelude.hand_over(conn, data, fds=(fd, fd))
        theirs.close()  # the hub has its own copy now
        self.conn = conn
        self.decoder = Decoder()
        self.frames = []
        self.sock.settimeout(5)
        self.send(Hello(epoch, base), Resume(last))

    def send(self, *frames):
        self.sock.sendall(b"".join(map(encode, frames)))

    def read_until(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not pred(self.frames):
            assert time.monotonic() < deadline, self.frames
            data = self.sock.recv(1 << 20)
            if not data:
                break
            self.frames += self.decoder.feed(data)
        return self.frames

    def msgs(self, channel=None):
        return [f for f in self.frames if type(f) is Msg and channel in (None, f.channel)]

    def closed(self, timeout=5.0):
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    return True
                self.frames += self.decoder.feed(data)
        except OSError:
            return False

    def close(self):
        self.sock.close()
        self.conn.close()


@pytest.fixture
def setup(tmp_path, monkeypatch):
    kernel = Kernel(tmp_path)
    signals = []
    monkeypatch.setattr(relay_hub, "kill_group", lambda pgid, n: signals.append((pgid, n)))
    made = []

    def make(limit=1 << 20):
        hub = relay_hub.Hub(kernel.ip, kernel.ports, "secret", "hmac-sha256", limit, str(tmp_path))
        kernel.subscribed()
        thread = threading.Thread(target=hub.run, args=(4242,), daemon=True)
        thread.start()
        made.append((hub, thread))
        return hub, thread

    yield kernel, make, signals
    for hub, thread in made:
        if thread.is_alive():
            hub.kernel_exited(0)
            thread.join(10)
        hub.close()
    kernel.close()


def test_a_link_is_greeted_and_a_clients_request_reaches_the_kernel_as_that_client(setup):
    kernel, make, _ = setup
    hub, _ = make()
    local = Local(hub.path)
    local.read_until(lambda fs: any(type(f) is Resume for f in fs))
    hello, resume = local.frames[:2]
    assert type(hello) is Hello and hello.base == 0 and resume == Resume(0)
    local.send(Msg("shell", b"client-A", 1, [DELIMITER, b"sig", b"{}", b"{}", b"{}", b"{}"]))
    ident, *parts = kernel.socks["shell"].recv_multipart()
    assert ident == b"client-A" and parts[0] == DELIMITER
    # the kernel answers that client on shell and asks it for input on stdin
    kernel.socks["shell"].send_multipart([b"client-A", DELIMITER, b"reply"])
    kernel.socks["stdin"].send_multipart([b"client-A", DELIMITER, b"input_request"])
    local.read_until(lambda fs: len([f for f in fs if type(f) is Msg]) == 2)
    got = {(m.channel, m.peer, m.parts[-1]) for m in local.msgs()}
    assert got == {("shell", b"client-A", b"reply"), ("stdin", b"client-A", b"input_request")}
    assert sorted(m.seq for m in local.msgs()) == [1, 2]
    local.close()


def test_output_made_while_nobody_is_linked_is_replayed_once_in_order(setup):
    kernel, make, _ = setup
    hub, _ = make()
    for i in range(50):
        kernel.publish("stream", str(i))
    time.sleep(0.3)  # drained into the journal: nobody is linked
    first = Local(hub.path)
    first.read_until(lambda fs: len(first.msgs("iopub")) == 50)
    texts = [json.loads(m.parts[-1])["text"] for m in first.msgs("iopub")]
    assert texts == [str(i) for i in range(50)]
    first.send(Ack(30))  # the local side got 30 of them, then the link died
    first.close()
    for i in range(50, 60):
        kernel.publish("stream", str(i))
    second = Local(hub.path, last=30)
    second.read_until(lambda fs: len(second.msgs("iopub")) == 30)
    assert [m.seq for m in second.msgs("iopub")] == list(range(31, 61))
    assert not any(type(f) is Skip for f in second.frames)
    second.close()


def test_a_new_link_replaces_the_old_one(setup):
    kernel, make, _ = setup
    hub, _ = make()
    old = Local(hub.path)
    old.read_until(lambda fs: any(type(f) is Resume for f in fs))
    new = Local(hub.path)
    assert old.closed()  # a half-open link is let go of at once
    kernel.publish("stream", "x")
    new.read_until(lambda fs: len(new.msgs("iopub")) == 1)
    new.close()


def test_heartbeats_go_to_the_kernel_and_back_never_journaled(setup):
    kernel, make, _ = setup
    hub, _ = make()
    local = Local(hub.path)
    local.read_until(lambda fs: any(type(f) is Resume for f in fs))
    local.send(Msg("hb", b"hb-peer", 0, [b"", b"ping"]))
    ident, *parts = kernel.socks["hb"].recv_multipart()
    kernel.socks["hb"].send_multipart([ident, *parts])  # the kernel echoes
    local.read_until(lambda fs: len(local.msgs("hb")) == 1)
    (echo,) = local.msgs("hb")
    assert (echo.peer, echo.seq, echo.parts) == (b"hb-peer", 0, [b"", b"ping"])
    assert hub.journal.last_seq == 0
    local.close()


def test_pings_signals_and_the_exit_report(setup):
    kernel, make, signals = setup
    hub, thread = make()
    local = Local(hub.path)
    local.send(Ping(9), Signal(int(signal.SIGINT)))
    local.read_until(lambda fs: Pong(9) in fs)
    deadline = time.monotonic() + 5
    while not signals and time.monotonic() < deadline:
        time.sleep(0.01)
    assert signals == [(4242, int(signal.SIGINT))]
    kernel.publish("stream", "last words")
    time.sleep(0.2)
    hub.kernel_exited(-9)
    local.read_until(lambda fs: any(type(f) is Exit for f in fs))
    thread.join(5)
    assert not thread.is_alive() and hub.told
    # the output before the exit came before the exit report
    assert [type(f) for f in local.frames if type(f) in (Msg, Exit)] == [Msg, Exit]
    assert local.frames[-1] == Exit(-9)
    local.close()


def test_the_bound_drops_the_oldest_output_and_says_so_once(setup):
    kernel, make, _ = setup
    hub, _ = make(limit=20_000)
    parent = {"msg_id": "the-cell"}
    for i in range(100):
        kernel.publish("stream", f"{i:04d}" + "x" * 1000, parent)
    kernel.publish("status", "idle", parent)  # never dropped
    time.sleep(0.5)
    local = Local(hub.path)
    local.read_until(lambda fs: any(b"sshpyk:" in p for m in local.msgs() for p in m.parts))
    skips = [f for f in local.frames if type(f) is Skip]
    assert skips and skips[0].first == 1
    dropped = sum(s.last - s.first + 1 for s in skips)
    marker = local.msgs()[-1]
    text = json.loads(marker.parts[-1])["text"]
    assert text.startswith(f"[sshpyk: {dropped} messages (")
    assert json.loads(marker.parts[4]) == parent  # shown in the cell that lost the output
    kept = [json.loads(m.parts[-1])["text"][:4] for m in local.msgs()[:-1]]
    assert kept[-1] == "idle" and kept[-2] == "0099"  # the newest output is kept
    local.close()


def test_a_new_local_side_starts_a_new_inbox_at_its_base(setup):
    """After a Jupyter server restart the local journal starts again at 1: the hub must not
    take its messages for repeats of the old server's."""
    kernel, make, _ = setup
    hub, _ = make()
    old = Local(hub.path, epoch=1)
    body = [DELIMITER, b"sig", b"{}", b"{}", b"{}", b"{}"]
    for seq in (1, 2, 3):
        old.send(Msg("shell", b"old", seq, body))
    for _ in range(3):
        kernel.socks["shell"].recv_multipart()
    old.close()
    new = Local(hub.path, epoch=2)
    new.read_until(lambda fs: any(type(f) is Resume for f in fs))
    assert [f for f in new.frames if type(f) is Resume] == [Resume(0)]
    new.send(Msg("shell", b"new", 1, body))
    ident, *_ = kernel.socks["shell"].recv_multipart()
    assert ident == b"new"
    new.close()


def test_a_dead_links_marker_is_merged_into_one_for_the_next_link(setup):
    """A link that died without a word still looks alive: the bound's marker made then
    never arrives.  The next link gets ONE marker counting every dropped message."""
    kernel, make, _ = setup
    hub, _ = make(limit=20_000)
    dead = Local(hub.path)  # never acknowledges anything
    dead.read_until(lambda fs: any(type(f) is Resume for f in fs))
    for i in range(100):
        kernel.publish("stream", f"{i:04d}" + "x" * 1000)
    deadline = time.monotonic() + 5
    while not hub.markers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.markers  # a marker was made while the dead link was linked
    for i in range(100, 200):
        kernel.publish("stream", f"{i:04d}" + "x" * 1000)
    time.sleep(0.3)
    withdrawn = len(hub.markers)  # the dead link's, never acknowledged
    new = Local(hub.path)  # it had nothing: resumes from 0
    new.read_until(lambda fs: any(b"sshpyk:" in p for m in new.msgs() for p in m.parts))
    new.read_until(lambda fs: json.loads(new.msgs()[-1].parts[-1])["text"].startswith("[sshpyk"))
    markers = [m for m in new.msgs() if json.loads(m.parts[-1])["text"].startswith("[sshpyk")]
    assert len(markers) == 1
    skipped = sum(f.last - f.first + 1 for f in new.frames if type(f) is Skip)
    kept = len(new.msgs()) - 1
    # every seq is accounted for: kept, dropped, or the withdrawn marker (a SKIP too)
    assert kept + skipped == markers[0].seq - 1
    text = json.loads(markers[0].parts[-1])["text"]
    assert text.startswith(f"[sshpyk: {skipped - withdrawn} messages (")
    new.close()
    dead.close()


def test_a_session_that_hangs_up_is_let_go_of(setup):
    """A session's stdin is a pipe: when ssh goes, poll reports a hang-up (no POLLIN), which
    the hub must take as the link's end, not report again forever (a spinning nanny)."""
    _, make, _ = setup
    hub, _ = make()
    down_r, down_w = os.pipe()  # local -> hub
    up_r, up_w = os.pipe()  # hub -> local
    conn = _prelude.hub_connection(hub.path)
    assert _prelude.hand_over(conn, encode(Hello(1, 0)) + encode(Resume(0)), fds=(down_r, up_w))
    os.close(down_r)
    os.close(up_w)
    got = Decoder()
    frames = got.feed(os.read(up_r, 1 << 16))
    assert type(frames[0]) is Hello
    os.close(down_w)  # ssh is gone
    deadline = time.monotonic() + 5
    while hub.linked and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not hub.linked
    conn.settimeout(5)
    assert conn.recv(16) == b""  # the session's process is told: it ends, so does the session
    conn.close()
    os.close(up_r)


def test_a_new_local_side_after_everything_was_acknowledged(setup):
    """A server restarted after its predecessor acknowledged everything: it resumes from 0,
    the hub has nothing to send; it must then neither spin nor resend, and the kernel's next
    message goes out as the one after those acknowledged."""
    kernel, make, _ = setup
    hub, thread = make()
    old = Local(hub.path, epoch=1)
    kernel.publish("stream", "before")
    old.read_until(lambda fs: len(old.msgs("iopub")) == 1)
    old.send(Ack(1))
    deadline = time.monotonic() + 5
    while hub.journal.acked < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    old.close()
    new = Local(hub.path, epoch=2, last=0)
    new.read_until(lambda fs: any(type(f) is Resume for f in fs))
    hello = next(f for f in new.frames if type(f) is Hello)
    assert hello.base == 1  # the new inbox starts after what was acknowledged
    kernel.publish("stream", "after")
    new.read_until(lambda fs: len(new.msgs("iopub")) == 1)
    assert [m.seq for m in new.msgs("iopub")] == [2]
    hub.kernel_exited(0)
    new.read_until(lambda fs: any(type(f) is Exit for f in fs))
    thread.join(5)
    assert not thread.is_alive()  # it did not spin with nothing to send
    new.close()
