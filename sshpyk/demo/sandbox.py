"""The demo's sshd: a private, loopback-only sshd running as the current user, started,
reused when healthy, and stopped with every process of its sessions.

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
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

from ..localproc import pid_alive
from . import processes
from .config import ALIAS, client_config, known_hosts_line, sshd_config
from .files import (
    DemoError,
    ensure_private_dir,
    keygen,
    pubkey,
    read_pidfile,
    tail,
    write_private,
)

STATE_FILE = "sandbox.json"

_BIND_ATTEMPTS = 5
_READY_TIMEOUT = 5.0
_CHECK_TIMEOUT = 15.0


@dataclass
class DemoSandbox:
    root: Path
    ssh_config: Path
    alias: str
    port: int
    sshd_pid: int
    remote_python_prefix: str
    # the sshd's start time and command when it started (see process_identity): without
    # /proc, the only proof that a recorded pid is still our sshd and not one that reused it
    sshd_identity: str | None = None


def demo_root() -> Path:
    return Path(jupyter_data_dir()) / "sshpyk" / "demo"


# ---------------------------------------------------------------------------------------
# public API


def load_sandbox(root: Path | None = None) -> DemoSandbox | None:
    """The recorded sandbox if its sshd is still alive, else None."""
    processes.reap_children()
    root = _norm(root)
    sb = _read_state(root)
    if sb is None or not processes.is_our_sshd(sb.sshd_pid, root, sb.sshd_identity):
        return None
    return sb


def start_sandbox(root: Path | None = None) -> DemoSandbox:
    """Start (or reuse, if running and healthy) the sandbox under ``root``."""
    processes.reap_children()
    root = _norm(root)
    current = load_sandbox(root)
    if current is not None:
        try:
            _check_login(current)
            return current
        except DemoError:
            pass  # half-dead: rebuild from zero rather than guess what is broken
    if root.exists() or root.is_symlink():
        ensure_private_dir(root)  # refuse to rmtree a directory that is not ours
        left = stop_sandbox(root)
        if left:
            raise DemoError("could not clear the previous demo sandbox: " + "; ".join(left))
    ensure_private_dir(root)
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
    processes.reap_children()
    root = _norm(root)
    sb = _read_state(root)
    pids = set()
    if sb is not None and processes.is_our_sshd(sb.sshd_pid, root, sb.sshd_identity):
        pids.add(sb.sshd_pid)
    pid_from_file = read_pidfile(root / "sshd.pid")
    if pid_from_file and processes.is_our_sshd(pid_from_file, root):
        pids.add(pid_from_file)
    # The listener first, so nothing new can log in while the sessions are being ended.
    processes.kill(pids)
    # A process in the middle of execve shows an empty environment for a moment (the new
    # image's is not set up yet), so one scan can miss it: scan until two in a row are empty.
    quiet = 0
    for _ in range(50):
        found = processes.marked_pids(root)
        if found:
            quiet = 0
            processes.kill(found)
            continue
        quiet += 1
        if quiet == 2:
            break
        time.sleep(0.02)
    remaining = sorted(p for p in pids | processes.marked_pids(root) if pid_alive(p))
    leftovers = [f"process {p} ({processes.cmdline(p)})" for p in remaining]
    if root.is_symlink():
        leftovers.append(f"{root} is a symlink (not removed)")
    elif root.exists():
        try:
            ensure_private_dir(root, create=False)
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


# ---------------------------------------------------------------------------------------
# building the sandbox


def _build_and_start(root: Path) -> DemoSandbox:
    import pwd  # POSIX only: imported here so that native Windows gets its refusal

    user = pwd.getpwuid(os.geteuid()).pw_name
    sshd = _find_sshd()
    host_key = root / "ssh_host_ed25519_key"
    client_key = root / "client_ed25519_key"
    keygen(host_key, "sshpyk-demo-host")
    keygen(client_key, "sshpyk-demo-client")
    write_private(root / "authorized_keys", pubkey(client_key) + "\n")

    if os.geteuid() == 0 and sys.platform.startswith("linux"):
        # sshd refuses to start as root without its compiled-in privsep directory (Debian's
        # /run/sshd; macOS's /var/empty is always there, and its / is read-only).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    log = root / "sshd.log"
    last_log = ""
    for _ in range(_BIND_ATTEMPTS):
        port = _free_port()
        cfg = root / "sshd_config"
        write_private(cfg, sshd_config(root, port, user), replace=True)
        write_private(log, "", replace=True)
        (root / "sshd.pid").unlink(missing_ok=True)
        pid, bind_failed = _spawn_sshd(sshd, cfg, root)
        if pid:
            break
        last_log = tail(log)
        if not bind_failed:
            raise DemoError(f"the demo sshd did not start:\n{last_log}")
    else:
        raise DemoError(
            f"the demo sshd could not bind a port after {_BIND_ATTEMPTS} attempts:\n{last_log}"
        )

    write_private(root / "known_hosts", known_hosts_line(port, pubkey(host_key)), replace=True)
    ssh_config = root / "ssh_config"
    write_private(ssh_config, client_config(root, port, user, client_key), replace=True)
    sb = DemoSandbox(
        root=root,
        ssh_config=ssh_config,
        alias=ALIAS,
        port=port,
        sshd_pid=pid,
        remote_python_prefix=sys.prefix,
        sshd_identity=processes.process_identity(pid),
    )
    _write_state(sb)
    return sb


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
    processes.track(proc)
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        # sshd writes its PidFile only after the listen socket is bound
        if read_pidfile(root / "sshd.pid") == proc.pid:
            return proc.pid, False
        if proc.poll() is not None:
            processes.forget(proc.pid)
            text = log.read_text(errors="replace") if log.exists() else ""
            return None, "Bind to port" in text or "Cannot bind any address" in text
        time.sleep(0.005)
    processes.kill({proc.pid})
    raise DemoError(f"the demo sshd did not start within {_READY_TIMEOUT:g}s:\n{tail(log)}")


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
            f"sshd.log:\n{tail(sb.root / 'sshd.log')}"
        ) from None
    if r.returncode != 0:
        raise DemoError(
            f"`{' '.join(argv)}` failed (exit {r.returncode}): {r.stderr.strip()}\n"
            f"sshd.log:\n{tail(sb.root / 'sshd.log')}",
            detail=r.stderr,
        )


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
    # probed, then given to sshd: another process may take it first (see _BIND_ATTEMPTS)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# state


def _norm(root: Path | None) -> Path:
    # abspath, not resolve(): resolving would follow a planted symlink instead of refusing it
    return Path(os.path.abspath(os.path.expanduser(root if root is not None else demo_root())))


def _write_state(sb: DemoSandbox) -> None:
    data = asdict(sb)
    data["root"] = str(sb.root)
    data["ssh_config"] = str(sb.ssh_config)
    tmp = sb.root / (STATE_FILE + ".tmp")
    write_private(tmp, json.dumps(data, indent=2) + "\n", replace=True)
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
