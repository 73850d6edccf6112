"""What runs on this machine, for the loopback test hosts on Linux and on a Mac: processes with
their command lines (and environment, where it can be read), whether a pid is alive, which
TCP ports listen and who owns them, what is mounted.

Linux answers from /proc (and ``ss``) exactly as the harness always did.  Without /proc (macOS)
the same answers come from ``ps`` and ``lsof``; their parsing is pure (``parse_*``) so the unit
tier checks it on recorded output.  The netns tier stays Linux-only and reads /proc directly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HAVE_PROC = Path("/proc/self/status").exists()

# pid, ppid, state, start time (lstart: "Sat Nov 28 21:26:20 2026", five words), command
PS_FIELDS = "pid=,ppid=,stat=,lstart=,command="
# the environment after the command: -E on macOS (there -e means -A), BSD "e" on Linux procps
PS_ENV_FLAG = "-E" if sys.platform == "darwin" else "e"


@dataclass
class Proc:
    pid: int
    ppid: int
    cmdline: str  # argv joined by spaces
    zombie: bool = False
    started: str = ""  # ps's lstart; empty from /proc (not needed there)
    env: set[str] = field(default_factory=set)  # "NAME=value"; empty when unreadable


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


# ---- parsing (pure) -------------------------------------------------------------------------


def parse_ps(text: str) -> list[Proc]:
    """Rows of ``ps -o pid=,ppid=,stat=,lstart=,command=`` (same layout on macOS and Linux)."""
    out = []
    for line in text.splitlines():
        parts = line.split(None, 8)
        if len(parts) < 8 or not parts[0].isdigit():
            continue
        cmd = parts[8] if len(parts) > 8 else ""
        out.append(
            Proc(
                pid=int(parts[0]),
                ppid=int(parts[1]),
                cmdline=cmd.rstrip(),
                zombie=parts[2].startswith("Z"),
                started=" ".join(parts[3:8]),
            )
        )
    return out


def parse_ps_env(with_env: str, commands: dict[int, str]) -> dict[int, set[str]]:
    """``ps -o pid=,command=`` with the environment flag prints each command followed by the
    environment; what follows the known command (``commands``, from the run without it) is the
    environment, one NAME=value per word (values with spaces are cut: markers have none)."""
    envs: dict[int, set[str]] = {}
    for line in with_env.splitlines():
        pid_s, _, rest = line.strip().partition(" ")
        if not pid_s.isdigit() or int(pid_s) not in commands:
            continue
        cmd = commands[int(pid_s)]
        rest = rest.lstrip()
        if cmd and rest.startswith(cmd):
            envs[int(pid_s)] = {w for w in rest[len(cmd) :].split() if "=" in w}
    return envs


def parse_ps_stat(text: str) -> bool:
    """``ps -p PID -o stat=``: alive when a row is there and it is not a zombie."""
    state = text.strip()
    return bool(state) and not state.startswith("Z")


def parse_lsof(text: str) -> list[tuple[str, int, int, str]]:
    """``lsof -nP -iTCP -sTCP:LISTEN -F pcn``: (address, port, pid, command) per listener.
    Field output: "p<pid>" starts a process, "c<command>" names it, "f<fd>" starts a file,
    "n<address>:<port>" names it ("*:22", "127.0.0.1:8888", "[::1]:8888")."""
    found = []
    pid, cmd = 0, ""
    for line in text.splitlines():
        tag, val = line[:1], line[1:]
        if tag == "p":
            pid, cmd = int(val), ""
        elif tag == "c":
            cmd = val
        elif tag == "n" and ":" in val:
            addr, _, port = val.rpartition(":")
            if port.isdigit():
                found.append((addr.strip("[]"), int(port), pid, cmd))
    return found


_SS_OWNER = re.compile(r'\("([^"]*)",pid=(\d+)')


def parse_ss(text: str) -> list[tuple[str, int, int, str]]:
    """``ss -Hltnp``: (address, port, pid, command) per listener owner."""
    found = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 4:
            continue
        addr, _, port = f[3].rpartition(":")
        owners = _SS_OWNER.findall(line) or [("", "0")]
        for cmd, pid in owners:
            found.append((addr.strip("[]"), int(port), int(pid), cmd))
    return found


def parse_mount(text: str) -> list[str]:
    """Mount points from ``mount`` ("dev on /point (type, options)" on macOS,
    "dev on /point type fs (options)" on Linux)."""
    points = []
    for line in text.splitlines():
        _, sep, rest = line.partition(" on ")
        if sep:
            points.append(re.split(r" \(| type ", rest, maxsplit=1)[0])
    return points


# ---- the answers ----------------------------------------------------------------------------


def _proc_processes(with_env: bool) -> list[Proc]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            raw = (d / "cmdline").read_bytes()
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            env = (d / "environ").read_bytes().split(b"\0") if with_env else []
        except OSError:
            continue
        found.append(
            Proc(
                pid=int(d.name),
                ppid=int(stat[1]),
                cmdline=raw.replace(b"\0", b" ").decode(errors="replace").strip(),
                zombie=stat[0] == "Z",
                env={e.decode(errors="replace") for e in env if e},
            )
        )
    return found


def ps_processes(with_env: bool = False) -> list[Proc]:
    """The fallback, usable on Linux too (a test compares it with /proc)."""
    procs = parse_ps(_run(["ps", "-A", "-ww", "-o", PS_FIELDS]).stdout)
    if with_env:
        cmds = {p.pid: p.cmdline for p in procs}
        out = _run(["ps", "-A", "-ww", PS_ENV_FLAG, "-o", "pid=,command="]).stdout
        for pid, env in parse_ps_env(out, cmds).items():
            next(p for p in procs if p.pid == pid).env = env
    return procs


def processes(with_env: bool = False) -> list[Proc]:
    """Every process this user can see; ``with_env`` reads environments too (slower)."""
    return _proc_processes(with_env) if HAVE_PROC else ps_processes(with_env)


def ps_pid_alive(pid: int) -> bool:
    return parse_ps_stat(_run(["ps", "-p", str(pid), "-o", "stat="]).stdout)


def pid_alive(pid: int) -> bool:
    """A zombie counts as dead: PID 1 here reaps orphans late and kill(0) succeeds on them."""
    if not HAVE_PROC:
        return ps_pid_alive(pid)
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return False


def lsof_listening_tcp() -> list[tuple[str, int, int, str]]:
    return parse_lsof(_run(["lsof", "-nP", "-iTCP", "-sTCP:LISTEN", "-F", "pcn"]).stdout)


def listening_tcp() -> list[tuple[str, int, int, str]]:
    """(address, port, pid, command) of every listening TCP socket: ``ss`` where Linux has it,
    else ``lsof``.  A socket shared by several processes shows once per owner."""
    if shutil.which("ss"):
        return parse_ss(_run(["ss", "-Hltnp"]).stdout)
    return lsof_listening_tcp()


def mount_points() -> list[str]:
    """Mount points, in mount order."""
    if HAVE_PROC:
        return [ln.split()[1] for ln in Path("/proc/self/mounts").read_text().splitlines()]
    return parse_mount(_run(["mount"]).stdout)


def others(procs: list[Proc]) -> list[Proc]:
    """Without this very process."""
    return [p for p in procs if p.pid != os.getpid()]
