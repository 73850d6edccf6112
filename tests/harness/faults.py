"""Network faults on one test host: cut its link, drop packets, add latency.

Everything is applied INSIDE the host's own network namespace (on its uplink), so only
traffic to and from that host is affected and nothing survives the namespace.  There is
no ``tc netem`` on this kernel, so latency uses NFQUEUE: ``nfqdelay.py`` holds each packet
and gives its verdict ``delay`` later, the TCP handshake included.

Use through the ``faults`` fixture, whose finalizer undoes everything it did.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from .topology import HarnessError, Host, TestHosts, kill_pids, run

COMMENT = ["-m", "comment", "--comment", "sshpyk-fault"]
NFQUEUE_NUM = "7"


class Faults:
    def __init__(self, hosts: TestHosts):
        if hosts.mode != "netns":
            raise HarnessError("fault helpers need the network-namespace test hosts (root)")
        self.hosts = hosts
        self._undo: list[tuple[str, callable]] = []
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()

    def _host(self, name: str) -> Host:
        return self.hosts[name]

    def _ipt(self, host: Host, *rule: str, add: bool) -> None:
        chain_op = "-I" if add else "-D"
        run(["ip", "netns", "exec", host.netns, "iptables", chain_op, *rule, *COMMENT])

    def _push(self, key: str, undo) -> None:
        with self._lock:
            self._undo.append((key, undo))

    def _pop(self, key: str) -> None:
        with self._lock:
            todo = [u for k, u in self._undo if k == key]
            self._undo = [(k, u) for k, u in self._undo if k != key]
        for undo in reversed(todo):
            undo()

    # ---- link cut --------------------------------------------------------------------------
    def cut(self, name: str, seconds: float | None = None) -> None:
        """Silently drop every packet of ``name`` (like a pulled cable, no RST, no ICMP).

        With ``seconds`` the link comes back by itself after that time.
        """
        h = self._host(name)
        rules = [("INPUT", "-i", h.uplink, "-j", "DROP"), ("OUTPUT", "-o", h.uplink, "-j", "DROP")]
        for r in rules:
            self._ipt(h, *r, add=True)
        self._push(f"cut:{name}", lambda: [self._ipt(h, *r, add=False) for r in rules])
        if seconds is not None:
            t = threading.Timer(seconds, self.restore, args=(name,))
            t.daemon = True
            self._timers.append(t)
            t.start()

    def restore(self, name: str) -> None:
        self._pop(f"cut:{name}")

    # ---- packet loss -----------------------------------------------------------------------
    def loss(self, name: str, percent: float) -> None:
        """Drop ``percent`` % of the packets in each direction, at random."""
        if not 0 < percent <= 100:
            raise ValueError("percent must be in (0, 100]")
        h = self._host(name)
        p = f"{percent / 100:.4f}"
        stat = ("-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP")
        rules = [("INPUT", "-i", h.uplink, *stat), ("OUTPUT", "-o", h.uplink, *stat)]
        for r in rules:
            self._ipt(h, *r, add=True)
        self._push(f"loss:{name}", lambda: [self._ipt(h, *r, add=False) for r in rules])

    def unloss(self, name: str) -> None:
        self._pop(f"loss:{name}")

    # ---- latency ---------------------------------------------------------------------------
    def latency(self, name: str, rtt_ms: float) -> None:
        """Add ``rtt_ms`` to every round trip with ``name``: all of it on the way in.

        Not half each way: a packet held on the host's way OUT is still its sender's (its
        socket's memory counts it), and TCP small queues and autocorking then hold the
        sender's next writes until it leaves: a second small reply waits a whole extra
        delay, as on no real link.  A packet entering the namespace is no longer its
        sender's (the veth hands it over), like one held in a router."""
        h = self._host(name)
        log = self.hosts.state / f"nfqdelay-{name}.log"
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                h.netns,
                sys.executable,
                str(Path(__file__).with_name("nfqdelay.py")),
                "--queue",
                NFQUEUE_NUM,
                "--delay-ms",
                str(rtt_ms),
                "--max-seconds",
                "3600",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
        )
        self.hosts.add_pid(proc.pid)
        time.sleep(0.3)  # let it bind the queue before packets are steered to it
        if proc.poll() is not None:
            raise HarnessError(f"nfqdelay exited at once: {log.read_text()[-500:]}")
        # --queue-bypass: should the delayer die, packets pass instead of blackholing
        q = ("-j", "NFQUEUE", "--queue-num", NFQUEUE_NUM, "--queue-bypass")
        rules = [("INPUT", "-i", h.uplink, *q)]
        for r in rules:
            self._ipt(h, *r, add=True)

        def undo():
            for r in rules:
                self._ipt(h, *r, add=False)
            kill_pids([proc.pid])
            proc.wait(timeout=5)

        self._push(f"latency:{name}", undo)

    def unlatency(self, name: str) -> None:
        self._pop(f"latency:{name}")

    # ---- cleanup ---------------------------------------------------------------------------
    def clear(self) -> None:
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        with self._lock:
            todo, self._undo = self._undo, []
        errors = []
        for _, undo in reversed(todo):
            try:
                undo()
            except Exception as e:  # keep undoing the rest; report at the end
                errors.append(str(e))
        if errors:
            raise HarnessError("could not undo faults: " + "; ".join(errors))

    def active_rules(self, name: str) -> list[str]:
        h = self._host(name)
        out = run(["ip", "netns", "exec", h.netns, "iptables", "-S"]).stdout
        return [line for line in out.splitlines() if "sshpyk-fault" in line]
