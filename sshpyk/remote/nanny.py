"""The kernel's nanny (bundled into ``launcher.py``, which starts it): from "ready" on, the
kernel's parent.

Two processes: the ssh session's own child only relays the session's stdio to the nanny,
a forked process in its own session that starts the kernel and stays its parent.  At EOF
the relay exits, so sshd can close the session and the local ssh client ends with it; the
nanny holds none of the session's pipes and keeps the kernel under its lease.

With ``channels: relay`` the nanny runs the relay's hub (``relay_hub.py``) over the
session after "ack", and over the sessions that attach later.
"""

import os
import shutil
import signal
import sys
import threading
import time
import traceback

from ._prelude import (  # sshpyk: bundled
    EXIT_SUFFIX,
    KERNEL_LOG,
    LEASE,
    emit,
    hand_over,
    hub_connection,
    kill_group,
    lease_age,
    let_go_of_stdio,
    serve_commands,
    wait_for_eof,
    write_private,
)
from .container import stop_container  # sshpyk: bundled
from .relay_hub import EXIT_FLUSH  # sshpyk: bundled

LEASE_TICK = 2.0


def touch(path):
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.utime(path)


def cleanup(rundir, sockets):
    shutil.rmtree(rundir, ignore_errors=True)
    if sockets and sockets != rundir:
        shutil.rmtree(sockets, ignore_errors=True)


# ---- the two processes -----------------------------------------------------------------------
def pump(src, dst):
    """Copy fd ``src`` to fd ``dst`` until EOF or an error."""
    while True:
        try:
            data = os.read(src, 65536)
            if not data:
                return
            while data:
                data = data[os.write(dst, data) :]
        except OSError:
            return


def split_off_nanny(hub_path=None):
    """Fork the nanny (see the top of this file).  Returns in the nanny, with sys.stdin and
    sys.stdout connected to this process, the relay, which never returns.  ``hub_path``
    (channels: relay): after "ack" the session is the relay's link: this process hands its
    stdin and stdout to the hub listening there and waits until the hub lets go."""
    cmd_r, cmd_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() == 0:
        os.setsid()
        for fd in (cmd_w, out_r, err_r):
            os.close(fd)
        # hold none of the session's pipes: while any process does, the session stays open
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (null, out_w, err_w):
            os.close(fd)
        sys.stdin = os.fdopen(cmd_r, "r")
        sys.stdout = os.fdopen(1, "w")
        sys.stderr = os.fdopen(2, "w")
        return
    for fd in (cmd_r, out_w, err_w):
        os.close(fd)

    def down():
        for line in sys.stdin:  # the loader's buffered stdin: it may hold more than it read
            try:
                os.write(cmd_w, line.encode())
            except OSError:
                break
        # EOF: the local side is gone or done.  The nanny sees EOF too: before "ack" it
        # kills the kernel and ends, after it it lets go of its stdout; either way the pump
        # below sees EOF and this process ends, so the session (and the ssh client holding
        # it) can end, once nothing of the launch is left to report.
        os.close(cmd_w)
        time.sleep(5.0)
        os._exit(0)

    if hub_path is not None:
        relay_session(hub_path, cmd_w, out_r, err_r)
    threading.Thread(target=down, daemon=True).start()
    err = threading.Thread(target=pump, args=(err_r, 2), daemon=True)
    err.start()
    pump(out_r, 1)
    err.join(1.0)
    os._exit(0)


def relay_session(hub_path, cmd_w, out_r, err_r):
    """The session's process, channels: relay.  The nanny's words (its "ready") go up as
    usual; the first line down ("ack", or anything else: the launch is abandoned) goes to
    the nanny, and after "ack" the session is handed to the hub (``hand_over``): no byte
    of the relay passes through this process.  Never returns."""
    out = threading.Thread(target=pump, args=(out_r, 1), daemon=True)
    out.start()
    threading.Thread(target=pump, args=(err_r, 2), daemon=True).start()
    # Nothing follows the parameters until "ready" has been answered, so the text layer
    # holds nothing more: its byte buffer (read1) is where the rest comes from.
    data = b""
    while b"\n" not in data:
        chunk = sys.stdin.buffer.read1(65536)
        if not chunk:
            break
        data += chunk
    line, newline, rest = data.partition(b"\n")
    conn = None
    try:
        os.write(cmd_w, line + newline)
        os.close(cmd_w)
    except OSError:
        pass
    if newline and line.strip() == b"ack":
        out.join(5.0)  # the nanny lets go of its stdout at "ack": nothing more comes up
        conn = hub_connection(hub_path)
        if conn is not None and not hand_over(conn, rest):
            conn = None
    if conn is not None:
        wait_for_eof(conn)
    else:
        out.join(5.0)
    os._exit(0)


def read_ack(fd):
    """Relay mode: whether the first line from the session is "ack"."""
    with os.fdopen(fd, "rb") as f:
        return f.readline().strip() == b"ack"


class Nanny:
    """The kernel's parent from "ready" on (see the top of this file)."""

    def __init__(self, proc, rundir, sockets, host, lease_timeout, hub=None, container=None):
        self.proc, self.pgid = proc, proc.pid  # start_new_session: the kernel leads its group
        self.rundir, self.sockets, self.host = rundir, sockets, host
        self.lease = os.path.join(self.rundir, LEASE)
        self.lease_timeout = lease_timeout
        self.acked = threading.Event()
        self.detached = threading.Event()
        self.hub = hub
        self.told = False  # the relay delivered the kernel's exit to a link
        self.container = container  # {runtime, name}: a kernel in a container (container.py)

    def signal(self, n):
        # not once the kernel is reaped: its pid (the group's id) may be reused
        if self.proc.returncode is None:
            kill_group(self.pgid, n)

    def commands(self):
        serve_commands(self.signal, on_ack=self.acked.set)
        # EOF: abandoned before the hand-over -> kill; after it -> the link is gone and
        # the kernel lives on under its lease (reaped and cleaned up by this process).
        self.detached.set()
        if not self.acked.is_set():
            kill_group(self.pgid, signal.SIGKILL)
            return
        let_go_of_stdio()  # the session (and the ssh client that held it) can end

    def relay(self):
        """Relay mode's commands: "ack", then the hub over this session, then over the
        sessions that attach later, until the kernel's exit is told."""
        if not read_ack(sys.stdin.fileno()):  # abandoned before the hand-over
            self.detached.set()
            kill_group(self.pgid, signal.SIGKILL)
            return
        self.acked.set()
        # the session's process hands the session itself to the hub (relay_session)
        let_go_of_stdio()
        try:
            self.hub.run(self.pgid)
        except Exception:  # a bug: a kernel nobody can reach must not run on silently
            with open(os.path.join(self.rundir, KERNEL_LOG), "a") as log:
                log.write("sshpyk relay hub failed:\n" + traceback.format_exc())
            kill_group(self.pgid, signal.SIGKILL)
        self.told = self.hub.told

    def linked(self):
        return self.hub.linked if self.hub is not None else not self.detached.is_set()

    def keep_lease(self):
        while self.proc.poll() is None:
            if self.linked():
                touch(self.lease)
            elif lease_age(self.lease) > self.lease_timeout:
                kill_group(self.pgid, signal.SIGTERM)  # abandoned: nobody renewed the lease
                for _ in range(50):
                    if self.proc.poll() is not None:
                        return
                    time.sleep(0.1)
                kill_group(self.pgid, signal.SIGKILL)
                return
            time.sleep(LEASE_TICK)

    def run(self):
        if self.hub is not None:
            relay = threading.Thread(target=self.relay, daemon=True)
        else:
            relay = threading.Thread(target=self.commands, daemon=True)
        relay.start()
        threading.Thread(target=self.keep_lease, daemon=True).start()
        rc = self.proc.wait()
        # the whole group: children the kernel left behind must not outlive it
        kill_group(self.pgid, signal.SIGKILL)
        try:
            self.tell(rc, relay)
        finally:
            # a podman/docker container outlives a killed client, and an ended one stays: it
            # goes once the end is told (the session may be closing: it must not wait for
            # the runtime, nor for `podman run --rm`, which ends seconds after its kernel)
            stop_container(self.container)

    def tell(self, rc, relay):
        if self.hub is not None:
            if self.acked.is_set():
                self.hub.kernel_exited(rc)
                relay.join(EXIT_FLUSH + 5.0)  # never held up for long by a stuck link
                if not self.told:
                    write_private(self.rundir + EXIT_SUFFIX, {"exit": rc, "host": self.host})
            self.hub.close()
            cleanup(self.rundir, self.sockets)
            return
        if self.detached.is_set() and self.acked.is_set():
            # for a monitor attached later (attach.py), which is not the kernel's parent; an
            # abandoned launch (EOF before "ack") has nobody to tell
            write_private(self.rundir + EXIT_SUFFIX, {"exit": rc, "host": self.host})
        cleanup(self.rundir, self.sockets)
        emit(exit=rc)
