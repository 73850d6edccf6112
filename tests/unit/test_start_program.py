"""The one session-shard policy (``sessions.start_program``) against a fake host whose
connections refuse sessions once full, as sshd's MaxSessions does."""

from __future__ import annotations

import asyncio
import json
import stat

from sshpyk import sessions
from sshpyk.remote.protocol import MARK, program_stdin
from sshpyk.sessions import start_program
from sshpyk.transport import SHARDS, Target

REFUSED = b"mux_client_request_session: session request failed: Session open refused by peer\n"


def _line(msg: dict) -> bytes:
    return f"{MARK}{json.dumps(msg)}\n".encode()


class FakeStdin:
    def __init__(self):
        self.data, self.closed = b"", False

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class FakeSession:
    """An ssh mux client: what it prints is fed at once; it ends when told to (or never)."""

    def __init__(self, out: bytes, err: bytes, *, ends=True, reports_on_stderr=False):
        self.returncode = None
        self.killed = False
        self._ended = asyncio.Event()
        self.stdin = None if reports_on_stderr else FakeStdin()
        self.stdout = None if reports_on_stderr else asyncio.StreamReader()
        self.stderr = asyncio.StreamReader()
        if self.stdout is not None:
            self.stdout.feed_data(out)
            self.stdout.feed_eof()
        self.stderr.feed_data(err)
        self.stderr.feed_eof()
        if ends:
            self._end(0)

    def _end(self, rc: int) -> None:
        self.returncode = rc
        self._ended.set()

    def kill(self) -> None:
        self.killed = True
        self._end(-9)

    async def wait(self) -> int:
        await self._ended.wait()
        return self.returncode


class FakeMaster:
    """A host's connection ``shard``: its first ``full`` connections refuse every session."""

    def __init__(self, host: FakeHost, shard: int):
        self.host, self.shard = host, shard
        self.target = Target("fake")

    def next_shard(self):
        return self.host.master(self.shard + 1) if self.shard + 1 < SHARDS else None

    async def ensure(self, timeout: float) -> None:
        self.host.ensured.append((self.shard, timeout))

    async def open_session(self, command: str):
        session = self.host.session_for(self, command)
        self.host.sessions.append((self.shard, session))
        return session

    async def run(self, command: str, *, input=None, timeout: float = 30):
        self.host.runs.append((self.shard, command))
        return 0, "", ""


class FakeHost:
    def __init__(self, full: int = 0, answer: bytes | None = None, refusal: bytes = REFUSED):
        self.full, self.refusal = full, refusal
        self.answer = (
            answer if answer is not None else _line({"shell_pid": 42}) + _line({"ready": True})
        )
        self.masters: dict[int, FakeMaster] = {}
        self.ensured: list = []
        self.sessions: list = []
        self.runs: list = []

    def master(self, shard: int = 0) -> FakeMaster:
        return self.masters.setdefault(shard, FakeMaster(self, shard))

    def session_for(self, master: FakeMaster, command: str) -> FakeSession:
        if master.shard < self.full:
            return FakeSession(b"", self.refusal)
        return FakeSession(self.answer, b"", ends=False)


def start(host: FakeHost, **kw):
    kw.setdefault("move", True)
    kw.setdefault("timeout", 7.0)
    return asyncio.run(start_program(host.master(0), "cmd", b"program\n", **kw))


def test_an_answered_start_stays_on_the_first_connection():
    host = FakeHost()
    started = start(host)
    assert started.master is host.master(0) and started.reply == {"ready": True}
    assert started.shell_pid == 42 and started.stderr == ""
    assert host.ensured == []
    ((_, session),) = host.sessions
    assert started.session is session and session.stdin.data == b"program\n"
    assert not session.killed  # the caller owns it now


def test_a_refused_session_moves_to_the_next_connections_until_one_answers():
    host = FakeHost(full=2)
    started = start(host)
    assert started.master is host.master(2) and started.reply == {"ready": True}
    assert host.ensured == [(1, 7.0), (2, 7.0)]  # each new connection made up first
    refused = [s for shard, s in host.sessions if shard < 2]
    assert len(refused) == 2 and all(s.returncode is not None for s in refused)
    assert all(s.stdin.closed for s in refused)


def test_a_restarting_kernel_does_not_move():
    host = FakeHost(full=1)
    started = start(host, move=False)
    assert started.reply is None and started.master is host.master(0)
    assert "open refused" in started.stderr
    assert host.ensured == []


def test_no_more_connections_ends_with_the_refusal():
    host = FakeHost(full=SHARDS)
    started = start(host)
    assert started.reply is None and started.master.shard == SHARDS - 1
    assert "open refused" in started.stderr
    assert len(host.sessions) == SHARDS


def test_other_failures_do_not_move():
    host = FakeHost(full=1, refusal=b"Connection closed by UNKNOWN port 65535\n")
    started = start(host)
    assert started.reply is None and started.master is host.master(0)
    assert "Connection closed" in started.stderr and host.ensured == []


def test_noise_is_skipped_and_every_message_is_seen():
    noise = b"Welcome to the host!\n" + _line({"shell_pid": 7}) + b"motd\n"
    host = FakeHost(answer=noise + _line({"error": "prefix_missing"}) + _line({"late": 1}))
    seen: list[dict] = []
    started = start(host, on_message=seen.append)
    assert started.reply == {"error": "prefix_missing"} and started.shell_pid == 7
    assert seen == [{"shell_pid": 7}, {"error": "prefix_missing"}]


def test_a_program_that_said_nothing_but_hangs_is_killed_by_its_pid():
    host = FakeHost()
    host.session_for = lambda master, command: FakeSession(
        _line({"shell_pid": 99}), b"", ends=False
    )
    started = start(host)
    assert started.reply is None and started.shell_pid == 99
    assert host.runs == [(0, "kill -9 99")]  # after a second without its exit
    assert started.session.killed


def test_a_data_stream_session_reports_on_stderr_and_moves_too():
    host = FakeHost(full=1)
    opened: list[int] = []

    async def open_session(master):
        opened.append(master.shard)
        if master.shard < host.full:
            return FakeSession(b"", b"ssh: noise\n" + REFUSED, reports_on_stderr=True)
        answer = b"noise\n" + _line({"shell_pid": 5}) + _line({"mounted": "/m"})
        return FakeSession(b"", answer, ends=False, reports_on_stderr=True)

    started = asyncio.run(
        start_program(
            host.master(0), "cmd", None, move=True, timeout=3.0, open_session=open_session
        )
    )
    assert opened == [0, 1] and started.master is host.master(1)
    assert started.reply == {"mounted": "/m"} and started.shell_pid == 5


def test_a_data_stream_session_without_answer_gives_sshs_words():
    host = FakeHost()

    async def open_session(master):
        return FakeSession(b"", b"line one\nline two\n", reports_on_stderr=True)

    started = asyncio.run(
        start_program(
            host.master(0), "cmd", None, move=True, timeout=3.0, open_session=open_session
        )
    )
    assert started.reply is None and started.stderr == "line one\nline two"
    assert host.runs == []  # a data stream's program ends with its stream: no pid to kill


# ---- programs the host keeps (sessions.Kept) -------------------------------------------------
class KeepingHost(FakeHost):
    """A host whose loader keeps what it is sent whole (unless ``can_keep`` is false) and
    answers ``program_missing`` for a sha256 it does not keep."""

    def __init__(self, can_keep: bool = True):
        super().__init__()
        self.can_keep, self.kept, self.stdins = can_keep, False, []

    def session_for(self, master: FakeMaster, command: str) -> FakeSession:
        session = FakeSession(b"", b"", ends=False)
        session.stdout = asyncio.StreamReader()
        host = self

        class Loader(FakeStdin):
            def write(self, data: bytes) -> None:
                super().write(data)
                host.stdins.append(data)
                if data.startswith(b"=") and not host.kept:
                    answer = _line({"error": "program_missing"})
                else:
                    host.kept = host.kept or (host.can_keep and data.startswith(b"+"))
                    answer = _line({"shell_pid": 42}) + _line({"ready": True})
                session.stdout.feed_data(answer)

        session.stdin = Loader()
        return session


def start_kept(host: KeepingHost):
    return asyncio.run(
        start_program(
            host.master(0), "cmd", None, move=True, timeout=7.0, program=("launcher", {"a": 1})
        )
    )


def test_a_program_goes_whole_once_then_by_its_sha256(monkeypatch):
    monkeypatch.setattr(sessions, "KEPT", sessions.Kept())
    host = KeepingHost()
    for _ in range(3):
        assert start_kept(host).reply == {"ready": True}
    whole, *later = host.stdins
    assert whole == program_stdin("launcher", {"a": 1}, keep=True)
    assert later == [program_stdin("launcher", {"a": 1}, kept=True)] * 2
    assert len(later[0]) < 100


def test_a_host_that_lost_the_program_gets_it_whole_at_once_and_from_then_on(monkeypatch):
    monkeypatch.setattr(sessions, "KEPT", sessions.Kept())
    host = KeepingHost(can_keep=False)  # a home it cannot write
    assert start_kept(host).reply == {"ready": True}
    started = start_kept(host)  # asks by sha256, is told it is missing, sends it whole
    assert started.reply == {"ready": True}
    assert [s.startswith(b"=") for s in host.stdins] == [False, True, False]
    assert host.sessions[1][1].stdin.closed  # the asking session was ended
    assert start_kept(host).reply == {"ready": True}
    assert [s.startswith(b"=") for s in host.stdins] == [False, True, False, False]


def test_a_new_server_sends_by_sha256_what_the_host_kept_for_an_earlier_one(tmp_path, monkeypatch):
    store = tmp_path / "kept-programs"
    host = KeepingHost()
    monkeypatch.setattr(sessions, "KEPT", sessions.Kept(store=lambda: store))
    assert start_kept(host).reply == {"ready": True}  # whole, and kept
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    monkeypatch.setattr(sessions, "KEPT", sessions.Kept(store=lambda: store))  # a new server
    assert start_kept(host).reply == {"ready": True}
    assert [s[:1] for s in host.stdins] == [b"+", b"="]


def test_a_stale_store_costs_one_ask_and_the_host_keeps_the_program_again(tmp_path, monkeypatch):
    store = tmp_path / "kept-programs"
    monkeypatch.setattr(sessions, "KEPT", sessions.Kept(store=lambda: store))
    assert start_kept(KeepingHost()).reply == {"ready": True}
    host = KeepingHost()  # the same host, its copy gone (pruned, or a new home)
    monkeypatch.setattr(sessions, "KEPT", sessions.Kept(store=lambda: store))  # a new server
    for _ in range(2):
        assert start_kept(host).reply == {"ready": True}
    # asked by sha256, told it is missing, sent whole to keep (not refused), then by sha256
    assert [s[:1] for s in host.stdins] == [b"=", b"+", b"="]
