"""The tunnel state machine and the ping schedule, with a fake clock: no ssh, no kernel."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sshpyk.kernel import watchdog as wd
from sshpyk.kernel.watchdog import TRANSITIONS, Watchdog
from sshpyk.states import TunnelState as S

log = logging.getLogger("test")


def test_every_state_has_its_moves_and_dead_is_reachable_from_all():
    assert set(TRANSITIONS) == set(S)
    for state, moves in TRANSITIONS.items():
        assert S.DEAD in moves, state
    assert TRANSITIONS[S.DEAD] == {S.LAUNCHING, S.DEAD}


def test_launch_then_connect():
    w = Watchdog("h", 5, log)
    assert w.state == S.DEAD
    w.move(S.LAUNCHING, "connecting")
    w.move(S.LAUNCHING, "starting the remote kernel")
    assert (w.state, w.step) == (S.LAUNCHING, "starting the remote kernel")
    w.connected()
    assert (w.state, w.step) == (S.CONNECTED, "")


def test_a_move_to_the_same_state_and_step_keeps_since():
    w = Watchdog("h", 5, log)
    w.move(S.LAUNCHING, "x")
    since = w.since
    w.move(S.LAUNCHING, "x")
    assert w.since == since


def test_an_unlisted_move_is_logged_and_made(caplog):
    w = Watchdog("h", 5, log)
    with caplog.at_level(logging.ERROR):
        w.move(S.CONNECTED)  # dead -> connected is not a move the machine has
    assert w.state == S.CONNECTED
    assert "unexpected tunnel state change" in caplog.text


def test_reconnecting_becomes_lost_only_after_lost_timeout(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(wd.time, "time", lambda: now[0])
    w = Watchdog("h", 5, log)
    w.move(S.LAUNCHING)
    w.connected()
    w.move(S.RECONNECTING, "no answer from the host")
    now[0] += 4.9
    w.overdue()
    assert w.state == S.RECONNECTING
    now[0] += 0.2
    w.overdue()
    assert (w.state, w.step) == (S.LOST, "no answer for 5s")


def test_overdue_does_nothing_while_connected(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(wd.time, "time", lambda: now[0])
    w = Watchdog("h", 1, log)
    w.move(S.LAUNCHING)
    w.connected()
    now[0] += 100
    w.overdue()
    assert w.state == S.CONNECTED


def test_an_answer_brings_a_lost_link_back_unless_a_recovery_runs():
    w = Watchdog("h", 5, log)
    w.move(S.LAUNCHING)
    w.connected()
    w.move(S.RECONNECTING)
    w.move(S.LOST)
    w.answer(7, recovering=True)  # the recovery's new monitor decides, not a stray pong
    assert w.state == S.LOST
    w.answer(8, recovering=False)
    assert w.state == S.CONNECTED


def test_an_answer_measures_the_round_trip_and_forgets_older_pings(monkeypatch):
    now = [10.0]
    monkeypatch.setattr(wd.time, "monotonic", lambda: now[0])
    w = Watchdog("h", 5, log)
    w._sent = {1: 9.0, 2: 9.5, 3: 9.9}
    w.answer(2, recovering=False)
    assert w.rtt == pytest.approx(0.5)
    assert list(w._sent) == [3]


async def test_silence_makes_the_schedule_say_reconnecting_then_lost(monkeypatch):
    monkeypatch.setattr(wd, "PING_INTERVAL", 0.01)
    monkeypatch.setattr(wd, "SILENCE", 0.03)
    w = Watchdog("h", 0.05, log)
    w.move(S.LAUNCHING)
    w.connected()
    sent = []
    done = asyncio.Event()
    w.start(lambda n: sent.append(n) or True, done.is_set)
    for _ in range(200):
        await asyncio.sleep(0.01)
        if w.state == S.LOST:
            break
    done.set()
    w.stop()
    assert w.state == S.LOST
    assert sent[:3] == [1, 2, 3]


async def test_answers_keep_the_schedule_connected(monkeypatch):
    monkeypatch.setattr(wd, "PING_INTERVAL", 0.01)
    monkeypatch.setattr(wd, "SILENCE", 0.05)
    w = Watchdog("h", 1, log)
    w.move(S.LAUNCHING)
    w.connected()

    def ping(n: int) -> bool:
        asyncio.get_running_loop().call_soon(lambda: w.answer(n, recovering=False))
        return True

    stop = asyncio.Event()
    w.start(ping, stop.is_set)
    await asyncio.sleep(0.3)
    stop.set()
    w.stop()
    assert w.state == S.CONNECTED
    assert w.rtt is not None and w.rtt < 0.05


async def test_nothing_to_ping_is_not_counted_as_silence(monkeypatch):
    monkeypatch.setattr(wd, "PING_INTERVAL", 0.01)
    monkeypatch.setattr(wd, "SILENCE", 0.02)
    w = Watchdog("h", 1, log)
    w.move(S.LAUNCHING)
    w.connected()
    stop = asyncio.Event()
    w.start(lambda n: False, stop.is_set)  # no monitor session (a recovery runs)
    await asyncio.sleep(0.15)
    stop.set()
    w.stop()
    assert w.state == S.CONNECTED
    assert w._sent == {}


async def test_measure_returns_the_round_trip_or_none():
    w = Watchdog("h", 1, log)

    def ping(n: int) -> bool:
        asyncio.get_running_loop().call_later(0.01, lambda: w.answer(n, recovering=False))
        return True

    rtt = await w.measure(ping, 1.0)
    assert rtt is not None and 0.005 < rtt < 0.5
    assert await w.measure(lambda n: True, 0.05) is None  # never answered
    assert await w.measure(lambda n: False, 1.0) is None  # nothing to ping down
    assert w._waiters == {}
