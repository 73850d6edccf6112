# sshpyk-mount: one SSHFS mount (see sshpyk/mounts.py; the wire: sshpyk/remote/protocol.py;
# the prelude is sent ahead of this program).  Parameters come as argv[1] (JSON, no
# secrets): stdin and stdout ARE the SFTP stream to sshpyk's confined local server, so this
# program never touches them; it hands them to `sshfs -f -o passive` and reports on stderr:
# {"mounted": path} (the kernel may start), {"error": kind, "message": text}, {"log": line}
# (sshfs's own), {"expired": seconds} (the local server did not answer for that long:
# unmounted), and at the end {"exited": rc} (with "replaced": true when a newer helper took
# the mount point over).  It stays until sshfs exits (the stream ended), then makes sure
# nothing is left mounted.  The mount's lease: a statvfs through the mount every LEASE_TICK
# is one round trip to the local server; when none has come back for lease_timeout (the
# kernel's own lease: a link or a Jupyter server gone without a word), sshfs is ended, so no
# mount outlives what serves it.
import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from ._prelude import (  # sshpyk: bundled
    MOUNT_STATE_DIR,
    dir_problem,
    emit,
    fail,
    mountinfo,
    reports_on_stderr,
    write_private,
)

LEASE_TICK = 2.0


def alive_with(pid, needle):
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as f:
            return needle in f.read()
    except (OSError, ValueError):
        return False


def write_state(state, sshfs_pid):
    write_private(state, {"helper": os.getpid(), "sshfs": sshfs_pid})


def owner(state):
    try:
        with open(state) as f:
            return json.load(f).get("helper")
    except (OSError, ValueError):
        return None


def stop_previous(state, point):
    """A helper of an earlier connection may still hold the mount (its link died without
    either end noticing): end its sshfs, which unmounts on SIGTERM.  The state file names
    us first, so that helper knows it was replaced and its sshpyk does not mount again."""
    try:
        with open(state) as f:
            prev = json.load(f)
    except (OSError, ValueError):
        prev = {}
    write_state(state, None)
    pid = prev.get("sshfs")
    if pid and alive_with(pid, os.fsencode(point)) and alive_with(pid, b"sshfs"):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not alive_with(pid, b"sshfs"):
                break
            time.sleep(0.02)
        else:
            os.kill(pid, signal.SIGKILL)
    helper = prev.get("helper")
    if helper and helper != os.getpid() and alive_with(helper, b"sshpyk-mount"):
        os.kill(helper, signal.SIGTERM)


def keep_lease(point, proc, lease):
    answered = [time.monotonic()]

    def probe():
        while proc.poll() is None:
            try:
                os.statvfs(point)  # sshfs asks the local server every time (not cached)
            except OSError as e:
                if e.errno in (errno.ENOTCONN, errno.ECONNABORTED):
                    return  # the stream is gone: sshfs ends, and so does this helper
                # any other error is still an answer from the local server
            answered[0] = time.monotonic()
            time.sleep(LEASE_TICK)

    threading.Thread(target=probe, daemon=True).start()
    while proc.poll() is None:
        if time.monotonic() - answered[0] > lease:
            emit(expired=lease)
            proc.terminate()  # sshfs unmounts on SIGTERM, unless a request to us hangs it
            for _ in range(40):
                if proc.poll() is not None:
                    return
                time.sleep(0.05)
            proc.kill()  # main() unmounts what a killed sshfs left
            return
        time.sleep(LEASE_TICK / 4)


def unmount(fusermount, point):
    if fusermount and point in mountinfo():
        subprocess.run([fusermount, "-u", "-z", "--", point], stderr=subprocess.DEVNULL)


def main():
    reports_on_stderr()  # stdout is the SFTP stream
    p = json.loads(sys.argv[1])
    point = os.path.realpath(os.path.expanduser(p["remote_path"]))
    sshfs = os.path.expanduser(p["sshfs"]) if p.get("sshfs") else shutil.which("sshfs")
    if not sshfs or not os.access(sshfs, os.X_OK):
        fail("sshfs_missing", f"sshfs not found on this host ({p.get('sshfs') or 'PATH'})")
    fusermount = shutil.which("fusermount3") or shutil.which("fusermount")
    state_dir = os.path.expanduser(MOUNT_STATE_DIR)
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    state = os.path.join(state_dir, hashlib.sha256(os.fsencode(point)).hexdigest()[:16] + ".json")
    stop_previous(state, point)

    fstype = mountinfo().get(point)
    if fstype == "fuse.sshfs":
        unmount(fusermount, point)  # stale, from a connection that is gone
    elif fstype:
        fail("mount_point_busy", f"{point} is already a mount point ({fstype})")
    if not os.path.lexists(point):
        try:
            os.makedirs(point, mode=0o755)
        except OSError as e:
            fail("mount_point_unwritable", f"cannot create {point}: {e.strerror}")
    problem = dir_problem(point)
    if problem:
        user = os.environ.get("USER", "you")
        fail(
            *{
                "not_dir": ("mount_point_not_dir", f"{point} is not a directory"),
                "not_empty": ("mount_point_not_empty", f"{point} is not empty"),
                "unreadable": ("mount_point_unwritable", f"cannot read {point}: {problem[1]}"),
                "unwritable": ("mount_point_unwritable", f"{point} is not writable by {user}"),
            }[problem[0]]
        )

    opts = ["passive"] + [o for o in (p.get("options") or "").split(",") if o]
    if not any(o.startswith("idmap=") for o in opts):
        opts.append("idmap=user")  # local files show as the remote user's own
    # sshfs 3.7 answers readlink with EPERM in passive mode (even with OpenSSH's own
    # sftp-server); so symlinks are resolved by the local server, confined to the share
    if "follow_symlinks" not in opts:
        opts.append("follow_symlinks")
    # the local server answers a rename across file systems with a plain failure: sshfs then
    # says EXDEV, and `mv` copies instead of giving up
    if not any(o.startswith("workaround=") for o in opts):
        opts.append("workaround=renamexdev")
    argv = [sshfs, "-f", "-o", ",".join(opts), "--", ":/", point]
    proc = subprocess.Popen(argv, stdin=0, stdout=1, stderr=subprocess.PIPE)
    # this program must hold no end of the SFTP stream, or sshfs's EOF would not be ours to see
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    write_state(state, proc.pid)

    def stop(signum, frame):
        if proc.poll() is None:
            proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)

    deadline = time.monotonic() + float(p.get("timeout", 20))
    while mountinfo().get(point) != "fuse.sshfs":
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(None, None)
            err = proc.stderr.read().decode(errors="replace").strip()
            proc.wait()
            unmount(fusermount, point)
            fail("sshfs_failed", f"sshfs could not mount {point}: {err or 'timed out'}")
        time.sleep(0.01)
    emit(mounted=point)
    lease = float(p.get("lease_timeout") or 0)
    if lease > 0:
        threading.Thread(target=keep_lease, args=(point, proc, lease), daemon=True).start()
    for line in proc.stderr:
        emit(log=line.decode(errors="replace").rstrip())
    rc = proc.wait()
    if owner(state) != os.getpid():
        emit(replaced=True, exited=rc)  # a newer helper took the mount point over
        return
    unmount(fusermount, point)
    with contextlib.suppress(OSError):
        os.unlink(state)
    emit(exited=rc)


if __name__ == "__main__":
    main()
