# Run on the remote host to take up a running kernel again (sshpyk re-attach, or a new
# monitor after the old one's stream was lost).  Python >= 3.8, stdlib only.
#
# stdin: one JSON line {"rundir": ...}, then the nanny's commands ("signal N", "ping N").
# stdout: SSHPYK {"attached": meta} or {"error": "gone", "exit": rc|null}; then {"pong": N}
# and finally {"exit": rc} when the kernel ends.  While attached, it renews the kernel's
# lease (see launcher.py); EOF on stdin just detaches.
import contextlib
import json
import os
import signal
import sys
import threading
import time

MARK = "SSHPYK "
TICK = 2.0
_lock = threading.Lock()


def emit(**msg):
    with _lock:
        try:
            sys.stdout.write(MARK + json.dumps(msg) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie has exited already: its parent (the nanny) is about to report it
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True  # no /proc (macOS): kill(0) is all we have


def exit_code(rundir):
    for _ in range(25):  # the nanny writes it right after the kernel's exit
        try:
            with open(rundir + ".exit") as f:
                rc = json.load(f).get("exit")
            os.unlink(rundir + ".exit")
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


def drop_stale_session(nanny):
    """End the sshd process of the connection the nanny was launched over, when that
    connection is not ours: sshpyk had to make a new one, so the old one is dead but its
    server side may not know yet.  While it lives, it holds the kernel's sockets, and
    ZeroMQ refuses the reconnecting clients (their identity is still taken)."""
    old = parent_of(nanny) if nanny else 0
    if old <= 1 or old == os.getppid():
        return
    try:
        with open(f"/proc/{old}/cmdline", "rb") as f:
            if not f.read().startswith(b"sshd"):
                return
        os.kill(old, signal.SIGTERM)
    except OSError:
        pass


def main():
    params = json.loads(sys.stdin.readline())
    rundir = os.path.expanduser(params["rundir"])
    base = os.path.realpath(os.path.expanduser("~/.sshpyk/run"))
    if os.path.dirname(os.path.realpath(rundir)) != base:
        emit(error="bad_rundir", message=f"{rundir} is not an sshpyk run directory")
        return
    try:
        with open(os.path.join(rundir, "meta.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        emit(error="gone", exit=exit_code(rundir))
        return
    pid, pgid = int(meta["pid"]), int(meta["pgid"])
    if not alive(pid):
        emit(error="gone", exit=exit_code(rundir))
        return
    if params.get("drop_stale"):
        drop_stale_session(int(meta.get("nanny") or 0))
    lease = os.path.join(rundir, "lease")
    detached = threading.Event()

    def keep_lease():
        while not detached.is_set():
            with contextlib.suppress(OSError):
                os.utime(lease)
            detached.wait(TICK)

    threading.Thread(target=keep_lease, daemon=True).start()

    def commands():
        for line in sys.stdin:
            words = line.split()
            if len(words) == 2 and words[0] == "signal" and words[1].isdigit():
                with contextlib.suppress(OSError):
                    os.killpg(pgid, int(words[1]))
            elif len(words) == 2 and words[0] == "ping" and words[1].isdigit():
                emit(pong=int(words[1]))
        detached.set()

    threading.Thread(target=commands, daemon=True).start()
    meta["lease_age"] = 0
    emit(attached=meta)
    while not detached.is_set():
        if not alive(pid):
            emit(exit=exit_code(rundir))
            return
        detached.wait(0.2)


if __name__ == "__main__":
    main()
