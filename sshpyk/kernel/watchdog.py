"""The liveness of a remote kernel's link: a ping schedule, the round-trip time, and the
tunnel state machine, written once.

States (``TunnelState``) and the only moves between them::

    dead ──launch──▶ launching ──▶ connected ◀──answer──┐
      ▲                 │  │           │               │
      │       failed ◀──┘  │       silence / stream    │
      │                    │       ended               │
      │                    ▼           ▼               │
      └──── exit ───── reconnecting ──▶ lost ──────────┘
                          │  ▲  (after lost_timeout)
      the host wants a    ▼  │ a login made the master
      login it cannot    login_needed
      make by itself

Every state may go to ``dead`` (the kernel's exit is reported, or a shutdown could not
reach the host); ``launching`` follows ``dead`` on a launch and a restart, and re-enters
itself as its step changes.  Silence is not death: a kernel whose host stops answering is
"reconnecting", then "lost", and comes back "connected" when answers resume.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..states import TunnelState as S

# the watchdog's ping period, and how long without an answer means "reconnecting"
PING_INTERVAL = 1.0
SILENCE = 3.0

TRANSITIONS: dict[S, frozenset[S]] = {
    S.DEAD: frozenset({S.LAUNCHING, S.DEAD}),
    S.LAUNCHING: frozenset({S.LAUNCHING, S.CONNECTED, S.RECONNECTING, S.DEAD}),
    S.CONNECTED: frozenset({S.RECONNECTING, S.DEAD, S.LAUNCHING}),
    S.RECONNECTING: frozenset({S.CONNECTED, S.LOST, S.LOGIN_NEEDED, S.DEAD, S.LAUNCHING}),
    S.LOST: frozenset({S.CONNECTED, S.RECONNECTING, S.LOGIN_NEEDED, S.DEAD, S.LAUNCHING}),
    S.LOGIN_NEEDED: frozenset({S.RECONNECTING, S.CONNECTED, S.DEAD, S.LAUNCHING}),
}


class Watchdog:
    """Holds the tunnel state of one kernel and pings its monitor stream."""

    def __init__(
        self, alias: str, lost_timeout: float, log: logging.Logger | logging.LoggerAdapter
    ):
        self.alias = alias
        self.lost_timeout = lost_timeout
        self.log = log
        self.state, self.step, self.since = S.DEAD, "", time.time()
        self.rtt: float | None = None
        self._waiters: dict[int, asyncio.Future] = {}  # measure_rtt's pings
        self._sent: dict[int, float] = {}  # the schedule's pings in flight: id -> when sent
        self._last_answer = time.monotonic()
        self._task: asyncio.Task | None = None

    # ---- the state machine -------------------------------------------------------------------
    def move(self, state: S, step: str = "") -> None:
        """Go to ``state`` (with a ``step`` while launching); a move the table above does not
        list is a bug, logged and still made: the state must follow the kernel's reality."""
        if (state, step) == (self.state, self.step):
            return
        if state not in TRANSITIONS[self.state]:
            self.log.error("sshpyk: unexpected tunnel state change %s -> %s", self.state, state)
        self.state, self.step, self.since = state, step, time.time()

    def connected(self) -> None:
        """The host answers (a launch, or a new monitor after a reconnect)."""
        self._last_answer = time.monotonic()
        self.move(S.CONNECTED)

    def overdue(self) -> None:
        """Reconnecting for longer than ``lost_timeout``: lost."""
        if self.state == S.RECONNECTING and time.time() - self.since > self.lost_timeout:
            self.move(S.LOST, f"no answer for {self.lost_timeout}s")

    # ---- pings ---------------------------------------------------------------------------------
    def answer(self, n: int, *, recovering: bool) -> None:
        """A pong ``n`` came back down the monitor stream."""
        now = time.monotonic()
        if n in self._waiters:
            self._waiters[n].set_result(None)
        sent = self._sent.pop(n, None)
        if sent is not None:
            self.rtt = now - sent
            self._sent = {k: v for k, v in self._sent.items() if k > n}
        self._last_answer = now
        if self.state in (S.RECONNECTING, S.LOST) and not recovering:
            self.log.info("sshpyk: %s answers again", self.alias)
            self.move(S.CONNECTED)

    def heard(self) -> None:
        """Something other than a pong came down the stream: the link is alive (a pong may
        wait behind a burst of output)."""
        self._last_answer = time.monotonic()

    def start(self, ping: Callable[[int], bool], done: Callable[[], bool]) -> None:
        """Ping every second with ``ping(n)`` (False: nothing to ping down now) until
        ``done()``; idempotent."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(ping, done))

    async def _run(self, ping: Callable[[int], bool], done: Callable[[], bool]) -> None:
        """Silence means the link is down (the kernel is not dead)."""
        n = 0
        while not done():
            await asyncio.sleep(PING_INTERVAL)
            n += 1
            self._sent[n] = time.monotonic()
            if not ping(n):
                self._sent.pop(n, None)
                continue
            silent = time.monotonic() - self._last_answer
            if self.state == S.CONNECTED and silent > SILENCE:
                self.move(S.RECONNECTING, "no answer from the host")
                self.log.warning("sshpyk: no answer from %s; reconnecting", self.alias)
            else:
                self.overdue()

    async def measure(self, ping: Callable[[int], bool], timeout: float) -> float | None:
        """One round trip, now: the tunnel's latency (None when it does not come back)."""
        n = len(self._waiters) + int(time.monotonic() * 1000)
        fut = asyncio.get_running_loop().create_future()
        self._waiters[n] = fut
        t0 = time.monotonic()
        try:
            if not ping(n):
                return None
            await asyncio.wait_for(fut, timeout)
            self.rtt = time.monotonic() - t0
        except asyncio.TimeoutError:
            return None
        finally:
            self._waiters.pop(n, None)
        return self.rtt

    def stop(self) -> None:
        if self._task and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = None
