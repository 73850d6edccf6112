"""The sshd half of ``sshpyk demo``: a private, loopback-only sshd so sshpyk can be tried
without a server.

Everything lives in one 0700 directory (keys, configs, logs, state); the client side is
always used as ``ssh -F <root>/ssh_config``, so neither ~/.ssh nor /etc/ssh is read or
written.  The sshd runs as the current user, so the current Python environment doubles as
the "remote" one.  The module is synchronous on purpose: the CLI calls it directly, and
it must never run inside an event loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

from .errors import SSHPykError
from .transport import pid_alive

__all__ = [
    "ALIAS",
    "DemoError",
    "DemoSandbox",
    "demo_root",
    "load_sandbox",
    "shell_command",
    "start_sandbox",
    "stop_sandbox",
]

ALIAS = "sshpyk-demo"
ENV_MARK = "SSHPYK_DEMO"
STATE_FILE = "sandbox.json"

_BIND_ATTEMPTS = 5
_READY_TIMEOUT = 5.0
_CHECK_TIMEOUT = 15.0
_STOP_GRACE = 2.0

# sshd children we spawned in this process: kept so they can be reaped (no zombies, no
# "subprocess still running" ResourceWarning when the Popen would be collected).
_CHILDREN: dict[int, subprocess.Popen] = {}


class DemoError(SSHPykError):
    """The demo sandbox could not be created, started or verified."""

    kind = "demo"


@dataclass
class DemoSandbox:
    root: Path
    ssh_config: Path
    alias: str
    port: int
    sshd_pid: int
    remote_python_prefix: str
    # the sshd's start time and command when it started (see _identity): without /proc,
    # the only proof that a recorded pid is still our sshd and not a process that reused it
    sshd_identity: str | None = None


def demo_root() -> Path:
    return Path(jupyter_data_dir()) / "sshpyk" / "demo"


# ---------------------------------------------------------------------------------------
# public API


def load_sandbox(root: Path | None = None) -> DemoSandbox | None:
    """The recorded sandbox if its sshd is still alive, else None."""
    _reap()
    root = _norm(root)
    sb = _read_state(root)
    if sb is None or not _is_our_sshd(sb.sshd_pid, root, sb.sshd_identity):
        return None
    return sb


def start_sandbox(root: Path | None = None) -> DemoSandbox:
    """Start (or reuse, if running and healthy) the sandbox under ``root``."""
    _reap()
    root = _norm(root)
    current = load_sandbox(root)
    if current is not None:
        try:
            _check_login(current)
            return current
        except DemoError:
            pass  # half-dead: rebuild from zero rather than guess what is broken
    if root.exists() or root.is_symlink():
        _ensure_private_dir(root)  # refuse to rmtree a directory that is not ours
        left = stop_sandbox(root)
        if left:
            raise DemoError("could not clear the previous demo sandbox: " + "; ".join(left))
    _ensure_private_dir(root)
    try:
        sb = _build_and_start(root)
        _check_login(sb)
    except BaseException:
        with contextlib.suppress(Exception):
            stop_sandbox(root)
        raise
    return sb


def stop_sandbox(root: Path | None = None) -> list[str]:
    """Stop the sshd and every process started through it, remove ``root``.

    Returns what is left over (processes still alive, the directory still present);
    an empty list means the sandbox is completely gone.
    """
    _reap()
    root = _norm(root)
    sb = _read_state(root)
    pids = set()
    if sb is not None and _is_our_sshd(sb.sshd_pid, root, sb.sshd_identity):
        pids.add(sb.sshd_pid)
    pid_from_file = _read_pidfile(root / "sshd.pid")
    if pid_from_file and _is_our_sshd(pid_from_file, root):
        pids.add(pid_from_file)
    # The listener first, so nothing new can log in while the sessions are being ended.
    _kill(pids)
    # A process in the middle of execve shows an empty environment for a moment (the new
    # image's is not set up yet), so one scan can miss it: scan until two in a row are empty.
    quiet = 0
    for _ in range(50):
        found = _marked_pids(root)
        if found:
            quiet = 0
            _kill(found)
            continue
        quiet += 1
        if quiet == 2:
            break
        time.sleep(0.02)
    remaining = sorted(p for p in pids | _marked_pids(root) if pid_alive(p))
    leftovers = [f"process {p} ({_cmdline(p)})" for p in remaining]
    if root.is_symlink():
        leftovers.append(f"{root} is a symlink (not removed)")
    elif root.exists():
        try:
            _ensure_private_dir(root, create=False)
            shutil.rmtree(root)
        except (OSError, DemoError) as e:
            leftovers.append(f"directory {root} ({e})")
        else:
            if root.exists():
                leftovers.append(f"directory {root}")
    if not root.exists() and not root.is_symlink() and root == _norm(None):
        # the default root's parent (<jupyter data>/sshpyk) was made for it; rmdir, which
        # removes only an empty directory (never a symlink), so nothing else is ever lost
        with contextlib.suppress(OSError):
            os.rmdir(root.parent)
    return leftovers


def shell_command(name: str) -> str:
    """How the user's shell runs this environment's ``name`` (``sshpyk``, ``jupyter``), for
    the hints we print: the bare name when the shell finds this very program by it, else
    its path (``.venv/bin/sshpyk`` after ``./dev demo``, whose venv the user's shell has not
    activated).  A venv activated around us (``$VIRTUAL_ENV``) does not count: that PATH
    is the parent's (``./dev``), not the user's."""
    ours = _program(name)
    if ours is None:
        return name
    path = os.environ.get("PATH", "")
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        venv_bin = os.path.realpath(os.path.join(venv, "bin"))
        dirs = [d for d in path.split(os.pathsep) if d and os.path.realpath(d) != venv_bin]
        path = os.pathsep.join(dirs)
    found = shutil.which(name, path=path)
    if found and os.path.realpath(found) == os.path.realpath(ours):
        return name
    shown = os.path.abspath(ours)
    here = os.getcwd()
    if here != os.path.dirname(here) and shown.startswith(os.path.join(here, "")):
        # under the current directory (the project's .venv): short, like the README says
        relative = os.path.relpath(shown, here)
        shown = relative if os.sep in relative else os.path.join(os.curdir, relative)
    return shlex.quote(shown)


def _program(name: str) -> str | None:
    """This environment's ``name`` script: the one we were run as, if that is it."""
    if os.path.basename(sys.argv[0]) == name and os.path.isfile(sys.argv[0]):
        return sys.argv[0]
    script = os.path.join(sysconfig.get_path("scripts"), name)
    return script if os.access(script, os.X_OK) else None


# ---------------------------------------------------------------------------------------
# building the sandbox


def _build_and_start(root: Path) -> DemoSandbox:
    user = pwd.getpwuid(os.geteuid()).pw_name
    sshd = _find_sshd()
    host_key = root / "ssh_host_ed25519_key"
    client_key = root / "client_ed25519_key"
    _keygen(host_key, "sshpyk-demo-host")
    _keygen(client_key, "sshpyk-demo-client")
    _write_private(root / "authorized_keys", _pubkey(client_key) + "\n")

    if os.geteuid() == 0:
        # sshd refuses to start as root without its compiled-in privsep directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    log = root / "sshd.log"
    last_log = ""
    for _ in range(_BIND_ATTEMPTS):
        port = _free_port()
        cfg = root / "sshd_config"
        _write_private(cfg, _sshd_config(root, port, user), replace=True)
        _write_private(log, "", replace=True)
        (root / "sshd.pid").unlink(missing_ok=True)
        pid, bind_failed = _spawn_sshd(sshd, cfg, root)
        if pid:
            break
        last_log = _tail(log)
        if not bind_failed:
            raise DemoError(f"the demo sshd did not start:\n{last_log}")
    else:
        raise DemoError(
            f"the demo sshd could not bind a port after {_BIND_ATTEMPTS} attempts:\n{last_log}"
        )

    _write_private(root / "known_hosts", f"[127.0.0.1]:{port} {_pubkey(host_key)}\n", replace=True)
    ssh_config = root / "ssh_config"
    _write_private(ssh_config, _client_config(root, port, user, client_key), replace=True)
    sb = DemoSandbox(
        root=root,
        ssh_config=ssh_config,
        alias=ALIAS,
        port=port,
        sshd_pid=pid,
        remote_python_prefix=sys.prefix,
        sshd_identity=_identity(pid),
    )
    _write_state(sb)
    return sb


def _sshd_config(root: Path, port: int, user: str) -> str:
    root_login = "PermitRootLogin prohibit-password\n" if os.geteuid() == 0 else ""
    return f"""\
# Private sshd of `sshpyk demo` (not the system service); remove with `sshpyk demo --stop`.
Port {port}
ListenAddress 127.0.0.1
HostKey {_q(root / "ssh_host_ed25519_key")}
PidFile {_q(root / "sshd.pid")}
AuthorizedKeysFile {_q(root / "authorized_keys", tokens=True)}
# our own 0700 directory guards the files, whatever the modes of the dirs above it
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthenticationMethods publickey
AllowUsers {user}
{root_login}AllowTcpForwarding local
AllowStreamLocalForwarding local
X11Forwarding no
PermitTunnel no
GatewayPorts no
# ~/.ssh/rc would make the demo depend on (and run code from) the user's ~/.ssh
PermitUserRC no
PermitUserEnvironment no
PrintMotd no
PrintLastLog no
UseDNS no
# sshpyk multiplexes every kernel of a host over one connection (default is 10)
MaxSessions 100
MaxStartups 100:30:200
Subsystem sftp internal-sftp
# every session's processes carry this, which is how stop_sandbox finds kernels to end
SetEnv {_q(f"{ENV_MARK}={root}")}
LogLevel VERBOSE
"""


def _client_config(root: Path, port: int, user: str, key: Path) -> str:
    return f"""\
# ssh client config of `sshpyk demo`: always used as `ssh -F {root / "ssh_config"}`,
# so ~/.ssh/config and /etc/ssh/ssh_config are never read.
Host {ALIAS}
  HostName 127.0.0.1
  Port {port}
  User {user}
  IdentityFile {_q(key, tokens=True)}
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile {_q(root / "known_hosts", tokens=True)}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  BatchMode yes
  ConnectTimeout 5
"""


def _spawn_sshd(sshd: str, cfg: Path, root: Path) -> tuple[int | None, bool]:
    """Run sshd in the foreground of its own session; (pid once listening, bind_failed)."""
    log = root / "sshd.log"
    # -D keeps the pid ours to watch: an early exit (port taken since we probed it) is
    # seen at once instead of after a timeout.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
    proc = subprocess.Popen(
        [sshd, "-D", "-f", str(cfg), "-E", str(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
        env=env,
        start_new_session=True,  # Ctrl-C in the user's terminal must not reach it
    )
    _CHILDREN[proc.pid] = proc
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        # sshd writes its PidFile only after the listen socket is bound
        if _read_pidfile(root / "sshd.pid") == proc.pid:
            return proc.pid, False
        if proc.poll() is not None:
            _CHILDREN.pop(proc.pid, None)
            text = log.read_text(errors="replace") if log.exists() else ""
            return None, "Bind to port" in text or "Cannot bind any address" in text
        time.sleep(0.005)
    _kill({proc.pid})
    raise DemoError(f"the demo sshd did not start within {_READY_TIMEOUT:g}s:\n{_tail(log)}")


def _check_login(sb: DemoSandbox) -> None:
    argv = ["ssh", "-F", str(sb.ssh_config), sb.alias, "true"]
    try:
        r = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_CHECK_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise DemoError(
            f"`{' '.join(argv)}` did not finish within {_CHECK_TIMEOUT:g}s\n"
            f"sshd.log:\n{_tail(sb.root / 'sshd.log')}"
        ) from None
    if r.returncode != 0:
        raise DemoError(
            f"`{' '.join(argv)}` failed (exit {r.returncode}): {r.stderr.strip()}\n"
            f"sshd.log:\n{_tail(sb.root / 'sshd.log')}",
            detail=r.stderr,
        )


# ---------------------------------------------------------------------------------------
# files


def _norm(root: Path | None) -> Path:
    # abspath, not resolve(): resolving would follow a planted symlink instead of refusing it
    return Path(os.path.abspath(os.path.expanduser(root if root is not None else demo_root())))


def _ensure_private_dir(root: Path, create: bool = True) -> None:
    """Make ``root`` a real directory owned by us with mode 0700, or refuse."""
    if create:
        root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(root, 0o700)
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        raise DemoError(f"{root} does not exist") from None
    if stat.S_ISLNK(st.st_mode):
        raise DemoError(f"refusing to use {root}: it is a symlink")
    if not stat.S_ISDIR(st.st_mode):
        raise DemoError(f"refusing to use {root}: it is not a directory")
    if st.st_uid != os.geteuid():
        raise DemoError(f"refusing to use {root}: it is owned by uid {st.st_uid}, not by us")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(root, 0o700, follow_symlinks=False)


def _write_private(path: Path, text: str, replace: bool = False) -> None:
    if replace:
        path.unlink(missing_ok=True)
    # O_EXCL|O_NOFOLLOW: never write through something planted in our place
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _keygen(path: Path, comment: str) -> None:
    try:
        r = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        raise DemoError("ssh-keygen not found: install the OpenSSH client") from None
    if r.returncode != 0:
        raise DemoError(f"ssh-keygen failed: {r.stderr.strip()}")
    path.chmod(0o600)
    path.with_name(path.name + ".pub").chmod(0o600)


def _pubkey(private: Path) -> str:
    """``ssh-ed25519 AAAA...`` without the comment."""
    return " ".join(private.with_name(private.name + ".pub").read_text().split()[:2])


def _q(value: object, tokens: bool = False) -> str:
    """Quote a path for sshd_config/ssh_config (argv-style parsing, %-token expansion)."""
    s = str(value)
    if any(c in s for c in '"\\\n\r\t') or not s.isprintable():
        raise DemoError(f"unsupported character in path {s!r}; set JUPYTER_DATA_DIR elsewhere")
    if tokens:
        s = s.replace("%", "%%")
    return f'"{s}"'


def _write_state(sb: DemoSandbox) -> None:
    data = asdict(sb)
    data["root"] = str(sb.root)
    data["ssh_config"] = str(sb.ssh_config)
    tmp = sb.root / (STATE_FILE + ".tmp")
    _write_private(tmp, json.dumps(data, indent=2) + "\n", replace=True)
    os.replace(tmp, sb.root / STATE_FILE)


def _read_state(root: Path) -> DemoSandbox | None:
    try:
        data = json.loads((root / STATE_FILE).read_text())
        return DemoSandbox(
            root=root,
            ssh_config=root / "ssh_config",
            alias=str(data["alias"]),
            port=int(data["port"]),
            sshd_pid=int(data["sshd_pid"]),
            remote_python_prefix=str(data["remote_python_prefix"]),
            sshd_identity=data.get("sshd_identity"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no sshd.log)"


def _find_sshd() -> str:
    if os.access("/usr/sbin/sshd", os.X_OK):
        return "/usr/sbin/sshd"
    # sshd refuses to re-exec itself unless started by absolute path
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/opt/homebrew/sbin"])
    found = shutil.which("sshd", path=path)
    if not found:
        raise DemoError("sshd not found: install the OpenSSH server (e.g. openssh-server)")
    return os.path.abspath(found)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# processes


def _reap() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"


def _is_our_sshd(pid: int, root: Path, identity: str | None = None) -> bool:
    """Alive and really this sandbox's sshd (a recorded pid may have been reused since)."""
    if pid <= 1 or not pid_alive(pid):
        return False
    if not Path("/proc/self").exists():
        # No /proc (macOS): the process must still have the start time and command it had
        # when we started it; what cannot be proven is a stranger, never to be killed.
        return identity is not None and _identity(pid) == identity
    return str(root / "sshd_config") in _cmdline(pid) or _holds_log(pid, root)


def _identity(pid: int) -> str | None:
    """A process's start time and executable name, which a reused pid does not share (not
    its command line: sshd rewrites that as its process title); None when unreadable."""
    try:
        # /proc/<pid>/stat: "pid (comm) state ..."; field 22 is the start time in ticks
        head, tail = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
        return f"proc {tail.split()[19]} {head.split('(', 1)[1]}"
    except (OSError, IndexError):
        pass
    try:
        r = subprocess.run(
            ["ps", "-o", "lstart=", "-o", "comm=", "-p", str(pid)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = r.stdout.strip()
    return f"ps {line}" if r.returncode == 0 and line else None


def _holds_log(pid: int, root: Path) -> bool:
    """Whether ``pid`` has our sshd.log open: true of every sshd process of the sandbox.

    sshd overwrites its environment block with its process title, so neither the listener
    nor the per-connection sshds show a readable marker; all of them keep the -E log open.
    """
    log = str(root / "sshd.log")
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd) in (log, log + " (deleted)"):
                return True
    return False


def _ancestors() -> set[int]:
    """Our own pid and its ancestors: never kill the caller, even if it runs in the demo."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat_line = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat_line.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _marked_pids(root: Path) -> set[int]:
    """Every sshd of the sandbox, and every process of its sessions (kernels included)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return set()
    mark = f"{ENV_MARK}={root}".encode()
    skip = _ancestors()
    found = set()
    for d in proc.iterdir():
        if not d.name.isdigit() or int(d.name) in skip:
            continue
        pid = int(d.name)
        if (mark in _environ(pid) or _holds_log(pid, root)) and pid_alive(pid):
            found.add(pid)
    return found


def _kill(pids: set[int] | list[int]) -> None:
    """TERM, wait up to _STOP_GRACE seconds, then KILL; reap those that are our children."""
    pids = {p for p in pids if p > 1}
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        _reap()
        time.sleep(0.01)
    for p in pids:
        if pid_alive(p):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGKILL)
    for p in pids:
        proc = _CHILDREN.pop(p, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
