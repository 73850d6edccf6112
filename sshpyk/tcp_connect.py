"""``ProxyCommand`` for sshpyk's masters (with ``ProxyUseFdpass=yes``): connect to the host,
tune the TCP socket, hand it to ssh and exit.  ssh then owns a socket we configured.

Why: after a link cut, TCP retransmits with exponential back-off (0.2 s, 0.4 s, ... up to
2 minutes between tries), so a connection that survived a 30 s cut may stay silent for
another 20-30 s after the link is back.  ``TCP_RTO_MAX_MS`` (Linux >= 6.15) caps that
interval, so the connection resumes within about a second in both directions (the remote
resends its backlog as soon as one of our retransmissions reaches it; the measured times are
``benchmarks/resilience.py``'s, quoted in the README); ``TCP_NODELAY`` because every
message on this connection (ZeroMQ frames, pings) is latency-bound.  On older kernels the
option is skipped and ssh behaves exactly as without us.

Only used for hosts ssh reaches directly; with a ProxyJump/ProxyCommand of the user's,
sshpyk leaves the transport alone.
usage: python tcp_connect.py HOST PORT TIMEOUT LOG -- failures are appended to LOG, worded
as ssh words them: with ControlPersist, ssh sends a ProxyCommand's stderr to /dev/null.
"""

from __future__ import annotations

import socket
import sys

RTO_MAX_MS = 1000
# without it the kernel gives up after its retry count (~14 s into a cut at a 1 s cap);
# the same 10 minutes the master's ServerAlive settings allow (transport.py)
USER_TIMEOUT_MS = 600_000
TCP_RTO_MAX_MS = getattr(socket, "TCP_RTO_MAX_MS", 44)  # linux/tcp.h


def tune(s: socket.socket) -> None:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if sys.platform.startswith("linux"):
        try:
            s.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, RTO_MAX_MS)
        except OSError:
            return  # kernel < 6.15: the default back-off, and its default retry limit
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)


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
        s = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as e:
        return fail(f"Could not resolve hostname {host}: {e.strerror}")
    except TimeoutError:
        return fail(f"connect to host {host} port {port}: Connection timed out")
    except OSError as e:
        return fail(f"connect to host {host} port {port}: {e.strerror or e}")
    s.settimeout(None)
    tune(s)
    with socket.socket(fileno=1) as out:  # ssh made our stdout a unix socket
        socket.send_fds(out, [b"\0"], [s.fileno()])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
