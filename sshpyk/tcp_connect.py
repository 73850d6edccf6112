"""``ProxyCommand`` for sshpyk's masters (with ``ProxyUseFdpass=yes``): connect to the host,
tune the TCP socket, hand it to ssh and exit.  ssh then owns a socket we configured.

Why: after a link cut, TCP retransmits with exponential back-off (0.2 s, 0.4 s, ... up to
2 minutes between tries), so a connection that survived a 30 s cut may stay silent for
another 20-30 s after the link is back.  ``TCP_RTO_MAX_MS`` (Linux >= 6.15) caps that
interval, so the connection resumes within about a second in both directions (the remote
resends its backlog as soon as one of our retransmissions reaches it; the measured times are
``benchmarks/resilience.py``'s, quoted in the README); ``TCP_NODELAY`` because every
message on this connection (ZeroMQ frames, pings) is latency-bound.

What each platform gets (``plan``; every option is set on its own and one the system
refuses is skipped, so a launch never fails for a missing option):

- every system: ``TCP_NODELAY``, ``SO_KEEPALIVE``;
- Linux: ``TCP_USER_TIMEOUT`` 10 min (unacknowledged data dropped only after the same 10
  minutes ssh's ServerAlive settings allow), and ``TCP_RTO_MAX_MS`` 1 s on >= 6.15;
- macOS (no cap on the back-off there): keepalive after 30 s idle, every 10 s, 60 probes,
  and ``TCP_RXT_CONNDROPTIME`` 10 min (macOS's ``TCP_USER_TIMEOUT``): a dead link is given
  the same 10 minutes; ``TCP_CONNECTIONTIMEOUT`` is ssh's ConnectTimeout.  Python names
  few of these on macOS: the numbers are XNU's ``<netinet/tcp.h>`` (below).

The options are set before ``connect`` (``TCP_CONNECTIONTIMEOUT`` only means something
then; the others apply alike before or after).

Only used for hosts ssh reaches directly; with a ProxyJump/ProxyCommand of the user's,
sshpyk leaves the transport alone.
usage: python tcp_connect.py HOST PORT TIMEOUT LOG -- failures are appended to LOG, worded
as ssh words them: with ControlPersist, ssh sends a ProxyCommand's stderr to /dev/null.
Run with ``python -I -S``: stdlib only, no sshpyk import.
"""

from __future__ import annotations

import os
import re
import socket
import sys

RTO_MAX_MS = 1000
# without it the kernel gives up after its retry count (~14 s into a cut at a 1 s cap);
# the same 10 minutes the master's ServerAlive settings allow (transport.py)
USER_TIMEOUT_MS = 600_000
KEEPIDLE_S, KEEPINTVL_S, KEEPCNT = 30, 10, 60  # macOS: a silent peer dropped after ~10 min

# Option numbers for when Python lacks the name: linux/tcp.h, and XNU's netinet/tcp.h
LINUX = {"TCP_USER_TIMEOUT": 18, "TCP_RTO_MAX_MS": 44}
DARWIN = {
    "TCP_KEEPALIVE": 0x10,  # the idle time before the first probe (Linux: TCP_KEEPIDLE)
    "TCP_CONNECTIONTIMEOUT": 0x20,
    "TCP_RXT_CONNDROPTIME": 0x80,  # seconds of unanswered retransmissions before a drop
    "TCP_KEEPINTVL": 0x101,
    "TCP_KEEPCNT": 0x102,
}
TCP, SOCK = socket.IPPROTO_TCP, socket.SOL_SOCKET


def kernel_version(release: str) -> tuple[int, int] | None:
    """(major, minor) of a ``uname -r`` such as ``6.12.48+deb13-amd64``; None if unreadable."""
    found = re.match(r"(\d+)\.(\d+)", release)
    return (int(found.group(1)), int(found.group(2))) if found else None


def plan(platform: str, release: str, connect_timeout: float) -> list[tuple[int, str, int]]:
    """The options to set on this system, in order: (level, option name, value)."""
    out = [(TCP, "TCP_NODELAY", 1), (SOCK, "SO_KEEPALIVE", 1)]
    if platform.startswith("linux"):
        version = kernel_version(release)
        if version is None or version >= (6, 15):  # unknown: try it, it may be refused
            out.append((TCP, "TCP_RTO_MAX_MS", RTO_MAX_MS))
        out.append((TCP, "TCP_USER_TIMEOUT", USER_TIMEOUT_MS))
    elif platform == "darwin":
        out += [
            (TCP, "TCP_KEEPALIVE", KEEPIDLE_S),
            (TCP, "TCP_KEEPINTVL", KEEPINTVL_S),
            (TCP, "TCP_KEEPCNT", KEEPCNT),
            (TCP, "TCP_RXT_CONNDROPTIME", USER_TIMEOUT_MS // 1000),
            (TCP, "TCP_CONNECTIONTIMEOUT", max(1, round(connect_timeout))),
        ]
    return out


def option_number(name: str, platform: str) -> int | None:
    """The option's number: Python's name for it, else the system header's value."""
    known = getattr(socket, name, None)
    if known is not None:
        return known
    table = LINUX if platform.startswith("linux") else DARWIN if platform == "darwin" else {}
    return table.get(name)


def tune(s: socket.socket, platform: str, release: str, connect_timeout: float) -> list[str]:
    """Set ``plan``'s options on ``s``, each on its own; returns the names that were set."""
    done = []
    for level, name, value in plan(platform, release, connect_timeout):
        number = option_number(name, platform)
        if number is None:
            continue
        try:
            s.setsockopt(level, number, value)
        except OSError:
            continue  # this kernel lacks it (Linux < 6.15: TCP_RTO_MAX_MS): its defaults
        done.append(name)
    return done


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """``socket.create_connection``, with each socket tuned before it connects."""
    release = os.uname().release
    last: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        s = socket.socket(family, kind, proto)
        try:
            tune(s, sys.platform, release, timeout)
            s.settimeout(timeout)
            s.connect(address)
        except OSError as e:
            s.close()
            last = e
            continue
        s.settimeout(None)
        return s
    raise last or OSError(f"no address for {host}")


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0].startswith("-"):
        sys.stderr.write("usage: tcp_connect.py HOST PORT TIMEOUT LOG\n")
        return 2
    host, port, timeout, log = argv[0], int(argv[1]), float(argv[2]), argv[3]

    def fail(message: str) -> int:
        with open(log, "a") as f:
            f.write(f"ssh: {message}\n")
        return 255

    try:
        s = connect(host, port, timeout)
    except socket.gaierror as e:
        return fail(f"Could not resolve hostname {host}: {e.strerror}")
    except TimeoutError:
        return fail(f"connect to host {host} port {port}: Connection timed out")
    except OSError as e:
        return fail(f"connect to host {host} port {port}: {e.strerror or e}")
    with socket.socket(fileno=1) as out:  # ssh made our stdout a unix socket
        socket.send_fds(out, [b"\0"], [s.fileno()])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
