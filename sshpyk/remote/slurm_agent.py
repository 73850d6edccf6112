# A Slurm kernel's job: this program is the job's batch step (sshpyk/kernel/slurm.py submits
# it; the wire: sshpyk/remote/protocol.py; the prelude is sent ahead of it).  Parameters
# (argv[1], never a secret: slurmctld stores the job script): {"job": id, "first_grace": s,
# "idle_grace": s}.
#
# Why an agent: a kernel must outlive the session that launched it (a lost link, a
# re-attach), but a process started in a job step (`srun --overlap`) ends with that step.
# So every session of the kernel arrives as a step whose program (slurm_bridge.py) hands its
# stdin, stdout and stderr to this process over a unix socket; this process forks the
# session's command with them, inside the batch step, where the launcher's nanny and the
# kernel then live as long as the job.  The socket is in a fresh 0700 directory on the
# node's own disk, its peer must be the job's user (SO_PEERCRED), and the path is recorded
# (0600) under ~/.sshpyk/jobs/ for the bridge.
#
# The agent is a subreaper (Linux): nannies whose session ended stay its children, so it
# knows when no kernel is left.  Then the job ends by itself: `idle_grace` seconds after the
# last one (a restart starts the next one well within it; a kernel whose lease expired ends
# its job so), or `first_grace` seconds after the start when no launch ever came (the
# Jupyter server went away while the job was queued).  scancel, or the job's time limit,
# SIGTERMs it: it removes its socket and record and ends.
import array
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time

from ._prelude import (  # sshpyk: bundled
    JOBS_ROOT,
    host_identity,
    private_dir,
    write_private,
)

PR_SET_CHILD_SUBREAPER = 36
MAX_FDS = 3
# a session's command still running this long after its step went away is killed: the
# step's end closed its stdio, so an honest program has ended by then
ORPHAN_GRACE = 5.0
TICK = 0.5


def log(text):
    sys.stderr.write(f"sshpyk-agent: {text}\n")
    sys.stderr.flush()


def become_subreaper():
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def receive(conn):
    """The bridge's request: one JSON line and its stdio fds.  None when malformed."""
    fds = array.array("i")
    data = b""
    conn.settimeout(5.0)
    try:
        msg, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        data = msg
        while b"\n" not in data:
            more = conn.recv(65536)
            if not more:
                break
            data += more
        request = json.loads(data.partition(b"\n")[0])
    except (OSError, ValueError):
        request = None
    conn.settimeout(None)
    if not isinstance(request, dict) or not isinstance(request.get("command"), str):
        request = None
    if request is None or len(fds) != MAX_FDS:
        for fd in fds:
            os.close(fd)
        return None, []
    return request, list(fds)


def exit_code(status):
    """A wait status as a shell would say it (os.waitstatus_to_exitcode is python >= 3.9)."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def peer_is_us(conn):
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1] == os.getuid()


class Agent:
    def __init__(self, job, first_grace, idle_grace):
        self.job = job
        self.first_grace, self.idle_grace = first_grace, idle_grace
        self.dir = tempfile.mkdtemp(prefix="sshpyk-job-")  # 0700, on the node's own disk
        self.path = os.path.join(self.dir, "agent")
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.path)
        self.sock.listen(16)
        jobs = os.path.expanduser(JOBS_ROOT)
        private_dir(os.path.dirname(jobs))
        self.record = os.path.join(private_dir(jobs), f"{job}.json")
        write_private(
            self.record,
            {"job": job, "socket": self.path, "pid": os.getpid(), "host": host_identity()},
        )
        self.sessions = {}  # pid of a session's command -> its bridge's connection
        self.orphans = {}  # pid -> when it is killed (its bridge went away)
        self.launched = False
        self.idle_since = time.monotonic()
        self.stopping = False

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            with open(self.record) as f:
                if json.load(f).get("socket") == self.path:  # not a later agent's record
                    os.unlink(self.record)
        except (OSError, ValueError):
            pass

    def start_session(self, conn):
        if not peer_is_us(conn):
            conn.close()
            return
        request, fds = receive(conn)
        if request is None:
            conn.close()
            return
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()  # its own group: killed as one should its step go away
                for i, fd in enumerate(fds):
                    os.dup2(fd, i)
                os.closerange(MAX_FDS, min(os.sysconf("SC_OPEN_MAX"), 65536))
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.execv("/bin/sh", ["/bin/sh", "-c", request["command"]])  # noqa: S606 (the user's own)
            finally:
                os._exit(127)
        for fd in fds:
            os.close(fd)
        self.sessions[pid] = conn
        self.launched = True

    def bridge_gone(self, conn):
        for pid, c in list(self.sessions.items()):
            if c is conn:
                del self.sessions[pid]
                self.orphans[pid] = time.monotonic() + ORPHAN_GRACE
        conn.close()

    def reap(self):
        """Reap every child that ended (sessions, and nannies left to this subreaper); tell
        a session's bridge its exit status.  False when no child is left at all."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            self.orphans.pop(pid, None)
            conn = self.sessions.pop(pid, None)
            if conn is not None:
                try:
                    conn.sendall(json.dumps({"exit": exit_code(status)}).encode())
                    conn.sendall(b"\n")
                except OSError:
                    pass
                conn.close()

    def serve(self):
        while not self.stopping:
            watched = [self.sock, *self.sessions.values()]
            try:
                ready, _, _ = select.select(watched, [], [], TICK)
            except InterruptedError:
                ready = []
            for s in ready:
                if s is self.sock:
                    try:
                        conn, _ = self.sock.accept()
                    except OSError:
                        continue
                    self.start_session(conn)
                else:
                    try:
                        alive = s.recv(64)
                    except OSError:
                        alive = b""
                    if not alive:
                        self.bridge_gone(s)
            now = time.monotonic()
            for pid, when in list(self.orphans.items()):
                if now > when:
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGKILL)
                    self.orphans.pop(pid, None)
            if self.reap() or self.sessions:
                self.idle_since = now
            elif now - self.idle_since > (self.idle_grace if self.launched else self.first_grace):
                log(f"no kernel for {now - self.idle_since:.0f}s: ending job {self.job}")
                return


def main():
    params = json.loads(sys.argv[1])
    job = str(params.get("job") or os.environ.get("SLURM_JOB_ID") or "")
    if not job.isdigit():
        log("no Slurm job id")
        sys.exit(2)
    if not become_subreaper():
        log("not a subreaper: kernels may outlive their job's agent")
    agent = Agent(job, float(params.get("first_grace", 600)), float(params.get("idle_grace", 120)))

    def stop(signum, frame):
        agent.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"job {job} ready on {socket.gethostname()}")
    try:
        agent.serve()
    finally:
        agent.close()


if __name__ == "__main__":
    main()
