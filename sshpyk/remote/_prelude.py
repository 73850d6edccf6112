"""The prelude of every remote program: sent ahead of each (``sshpyk.remote.protocol.source``),
since the remote host never has sshpyk installed and each program runs alone.  Python >= 3.8,
stdlib only, ASCII.  The wire it speaks is described in ``sshpyk/remote/protocol.py``.

Who and where: run dirs live in ``~/.sshpyk/run``, and ``$HOME`` may be shared by several
hosts (HPC login nodes behind one alias), while pids are reused after a reboot or simply
over time.  So a run dir records its host (hostname, boot id, machine id) and each of its
processes with its start time, and nothing is signalled or removed unless all of them
match: "here" (this host, this boot: act if the processes are the recorded ones),
"elsewhere" (another host: never touched), "stale" (this host, an earlier boot: its
processes are gone) or "unknown" (no identity recorded: left to its own lease).
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

# The local side imports these from here (sshpyk.remote.protocol): written once.
MARK = "SSHPYK "
# the kernel's channels, in the order of every ports list
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")

# on the remote disk (described in protocol.py)
RUN_ROOT = "~/.sshpyk/run"
# Slurm kernels: each job's agent records its socket here (kernel/slurm.py, slurm_agent.py)
JOBS_ROOT = "~/.sshpyk/jobs"
META = "meta.json"
LEASE = "lease"
CONNECTION_FILE = "connection.json"
KERNEL_LOG = "kernel.log"
EXIT_SUFFIX = ".exit"
# the relay hub's unix socket, in the kernel's socket directory next to its k-1 .. k-5
RELAY_SOCKET = "k-r"
MOUNT_STATE_DIR = "~/.cache/sshpyk/mounts"


# ---- speaking to the local side -------------------------------------------------------------
_out_lock = threading.Lock()
_to_stderr = []


def reports_on_stderr():
    """For a program whose stdin and stdout are a data stream (mount.py): report on stderr."""
    _to_stderr.append(True)


def emit(**msg):
    """One message to the local side; a lost link must not stop the program (or the kernel)."""
    line = MARK + json.dumps(msg) + "\n"
    with _out_lock:
        try:
            if _to_stderr:
                os.write(2, line.encode())
            else:
                sys.stdout.write(line)
                sys.stdout.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass


def let_go_of_stdio():
    """Point fds 0, 1 and 2 at /dev/null, so the session can end: nobody reads us now."""
    with _out_lock:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)


def hub_connection(path):
    """A connection to the relay hub listening at ``path`` (``relay_hub``), or None."""
    conn = socket.socket(socket.AF_UNIX)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None
    return conn


def hand_over(conn, data=b"", fds=(0, 1)):
    """Give this session's stdin and stdout (``fds``) to the hub at the other end of
    ``conn``, with ``data``: what was read of stdin past the handshake.  The hub then reads
    and writes the session itself; this process only has to stay (while it runs, sshd keeps
    the session open) until the hub lets go: ``conn``'s EOF says so.  False when the hub
    did not take them."""
    import array
    import struct

    try:
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        conn.sendmsg([struct.pack(">I", len(data))], ancillary)
        conn.sendall(data)
    except OSError:
        conn.close()
        return False
    return True


def wait_for_eof(conn):
    try:
        while conn.recv(64):
            pass
    except OSError:
        pass


def fail(kind, message, **extra):
    """The program's one answer is an error: say it and end."""
    emit(error=kind, message=message, **extra)
    sys.exit(0)


def read_params():
    """The parameters: the first line on stdin (right after the program itself)."""
    return json.loads(sys.stdin.readline())


def serve_commands(on_signal, on_ack=None):
    """Apply the local side's commands until EOF on stdin: "signal N" (``on_signal(N)``),
    "ping N" (answered with {"pong": N}), "ack" (``on_ack()``); others are ignored."""
    for line in sys.stdin:
        words = line.split()
        if words == ["ack"]:
            if on_ack is not None:
                on_ack()
        elif len(words) == 2 and words[1].isdigit():
            if words[0] == "signal":
                on_signal(int(words[1]))
            elif words[0] == "ping":
                emit(pong=int(words[1]))  # the local side times the link with it


# ---- files -----------------------------------------------------------------------------------
def private_dir(path):
    """Create (0700) or accept an existing directory that is ours and not a symlink."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != os.getuid():
        fail("runtime_dir", f"{path} is not a private directory owned by {os.getuid()}")
    os.chmod(path, 0o700)
    return path


def write_private(path, data):
    """``data`` as JSON in ``path`` (0600), replaced at once: readers never see half a file."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def run_root():
    return os.path.expanduser(RUN_ROOT)


def lease_age(path):
    """Seconds since the lease ``path`` was last renewed (inf when there is none)."""
    try:
        return time.time() - os.stat(path).st_mtime
    except OSError:
        return float("inf")


def mountinfo():
    """{mount point: fstype} from /proc/self/mountinfo (octal escapes decoded)."""
    out = {}
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                left, _, right = line.partition(b" - ")
                point = left.split()[4].decode("unicode_escape").encode("latin-1")
                out[os.fsdecode(point)] = right.split()[0].decode()
    except OSError:
        pass
    return out


def dir_problem(point):
    """Why the existing ``point`` cannot be a mount point (mount.py, and inspect.py's check
    of it): None, or (kind, words) with kind not_dir, not_empty, unreadable or unwritable."""
    if not os.path.isdir(point):
        return "not_dir", "not a directory"
    try:
        if os.listdir(point):
            return "not_empty", "not empty"
    except OSError as e:
        return "unreadable", e.strerror
    if not os.access(point, os.W_OK):
        return "unwritable", "not writable"
    return None


# ---- processes -------------------------------------------------------------------------------
def kill_group(pgid, sig):
    """Signal a process group; False when it is gone."""
    try:
        os.killpg(pgid, sig)
        return True
    except OSError:
        return False


# ---- who and where (see the top of this file) ---------------------------------------------------
def host_identity():
    """This host and boot: run dirs may sit in a $HOME that other hosts share."""
    ident = {"hostname": socket.gethostname(), "boot_id": None, "machine_id": None}
    for key, path in (
        ("boot_id", "/proc/sys/kernel/random/boot_id"),
        ("machine_id", "/etc/machine-id"),
    ):
        try:
            with open(path) as f:
                ident[key] = f.read().strip() or None
        except OSError:
            pass
    if ident["boot_id"] is None:
        ident["boot_id"] = command_output(["sysctl", "-n", "kern.boottime"])  # macOS, BSD
    return ident


def command_output(argv):
    try:
        out = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=5,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def process_start(pid):
    """When process ``pid`` started (clock ticks since boot; ps's start time where there is
    no /proc): with the boot id, what a reused pid never shares.  None when no such process
    runs (a zombie has ended)."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        if os.path.isdir("/proc/self"):
            return None
        return command_output(["ps", "-o", "lstart=", "-p", str(int(pid))])
    except (OSError, ValueError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def where(meta, here):
    """Whose run dir this is: here, elsewhere, stale or unknown (see above)."""
    host = meta.get("host")
    if not isinstance(host, dict) or not host.get("hostname"):
        return "unknown"
    mine, theirs = here.get("machine_id"), host.get("machine_id")
    if host["hostname"] != here["hostname"] or (mine and theirs and mine != theirs):
        return "elsewhere"
    return "here" if host.get("boot_id") == here["boot_id"] else "stale"


def running(meta, key):
    """The process ``meta[key]`` runs, and is the one that was recorded."""
    pid, start = meta.get(key), meta.get(key + "_start")
    return bool(pid) and start is not None and process_start(pid) == start
