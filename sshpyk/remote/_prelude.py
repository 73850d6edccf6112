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

import os
import socket
import subprocess

MARK = "SSHPYK "
# the kernel's channels, in the order of every ports list (= protocol.CHANNELS)
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")


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
