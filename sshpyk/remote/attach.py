# A later monitor for a running kernel: sshpyk re-attaching, or a new monitor after the old
# one's stream was lost (the wire and the run dir: sshpyk/remote/protocol.py; the prelude
# is sent ahead of this program).  While attached, it renews the kernel's lease and applies
# the commands like the nanny (launcher.py); EOF on stdin just detaches.  It takes up,
# signals and drops only what meta.json proves to be this host's, this boot's and the
# recorded processes (see the prelude).
import contextlib
import json
import os
import signal
import socket
import threading
import time

from ._prelude import (  # sshpyk: bundled
    EXIT_SUFFIX,
    LEASE,
    META,
    emit,
    hand_over,
    host_identity,
    hub_connection,
    kill_group,
    read_params,
    run_root,
    running,
    serve_commands,
    wait_for_eof,
    where,
)

TICK = 2.0


def exit_code(rundir):
    for _ in range(25):  # the nanny writes it right after the kernel's exit
        try:
            with open(rundir + EXIT_SUFFIX) as f:
                rc = json.load(f).get("exit")
            os.unlink(rundir + EXIT_SUFFIX)
            return rc
        except (OSError, ValueError):
            time.sleep(0.1)
    return None


def parent_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def drop_stale_session(meta):
    """End the sshd process of the connection the kernel was launched over, when that
    connection is not ours: sshpyk had to make a new one, so the old one is dead but its
    server side may not know yet.  While it lives, it holds the kernel's sockets, and
    ZeroMQ refuses the reconnecting clients (their identity is still taken).  The launch
    session's own process (the launcher's relay) still runs exactly while that session is
    open; its parent is that connection's sshd."""
    old = parent_of(meta["session"]) if running(meta, "session") else 0
    if old <= 1 or old == os.getppid():
        return
    try:
        with open(f"/proc/{old}/cmdline", "rb") as f:
            if not f.read().startswith(b"sshd"):
                return
        os.kill(old, signal.SIGTERM)
    except OSError:
        pass


def relay(meta):
    """A relay kernel (relay_hub): its nanny holds the journal, renews the lease and applies
    signals; this session is handed to the hub, which reads and writes it from now on."""
    conn = hub_connection(meta["relay"])
    if conn is None:
        emit(error="gone", exit=None, message="the kernel's relay does not answer")
        return
    emit(attached=meta)
    # The local side sends nothing until it has read "attached": stdin holds nothing past
    # the parameters, and the hub reads the rest from the session itself.
    if hand_over(conn):
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(null, fd)  # the hub's now: when it lets go, the session ends
        os.close(null)
        wait_for_eof(conn)


def main():
    params = read_params()
    rundir = os.path.expanduser(params["rundir"])
    base = os.path.realpath(run_root())
    if os.path.dirname(os.path.realpath(rundir)) != base:
        emit(error="bad_rundir", message=f"{rundir} is not an sshpyk run directory")
        return
    try:
        with open(os.path.join(rundir, META)) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        emit(error="gone", exit=exit_code(rundir))
        return
    if not isinstance(meta, dict):
        meta = {}
    site = where(meta, host_identity())
    if site == "elsewhere":
        name = meta["host"]["hostname"]
        emit(
            error="elsewhere",
            hostname=name,
            message=f"the kernel runs on {name}, not on {socket.gethostname()}, which "
            "shares its home directory: connect to that host to take it up",
        )
        return
    if site == "unknown":
        emit(error="unverified", message=f"{rundir} names no host: it is left to its lease")
        return
    pgid = int(meta["pgid"])

    def alive():
        return site == "here" and running(meta, "pid")

    if not alive():
        emit(error="gone", exit=exit_code(rundir))
        return
    if meta.get("relay"):
        relay(meta)
        return
    if params.get("drop_stale"):
        drop_stale_session(meta)
    lease = os.path.join(rundir, LEASE)
    detached = threading.Event()

    def keep_lease():
        while not detached.is_set():
            with contextlib.suppress(OSError):
                os.utime(lease)
            detached.wait(TICK)

    threading.Thread(target=keep_lease, daemon=True).start()

    def commands():
        serve_commands(lambda n: alive() and kill_group(pgid, n))
        detached.set()

    threading.Thread(target=commands, daemon=True).start()
    meta["lease_age"] = 0
    emit(attached=meta)
    while not detached.is_set():
        if not alive():
            emit(exit=exit_code(rundir))
            return
        detached.wait(0.2)


if __name__ == "__main__":
    main()
