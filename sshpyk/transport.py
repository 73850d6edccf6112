"""The OpenSSH transport: one private ControlMaster per (ssh binary, config file, alias).

Every ssh call is an asyncio subprocess with a timeout, so the Jupyter server's event loop
never blocks on the network.  The master is ours alone: ControlMaster/ControlPath/
ControlPersist are given with ``-o``, which beats whatever the user's config says, so the
user's own masters are never touched.  Mux clients get ``ProxyCommand=false``: should the
master be gone, ssh would otherwise silently open a second, unshared connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import os
import pwd
import re
import shlex
import socket
import stat
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from .errors import SSHConnectError, SSHPykError, classify_ssh_failure

# How long a master outlives its last session (kernel); then ssh ends it by itself.
CONTROL_PERSIST = 60
# The master ends itself after INTERVAL * COUNT seconds without an answer: long enough to
# ride out a laptop lid or a Wi-Fi change with every kernel connection intact.  What the
# user sees meanwhile ("reconnecting", "lost") is the provisioner's watchdog's business.
SERVER_ALIVE_INTERVAL = 5
SERVER_ALIVE_COUNT = 120
TCP_CONNECT = Path(__file__).with_name("tcp_connect.py")
# connections per host at most, when it limits sessions per connection (sshd MaxSessions)
SHARDS = 8
# what a mux client says when the host refused a session on a full connection
SESSION_REFUSED = "open refused"
# A master leaves ``<control_path>.log`` and ``.lock`` behind when it ends.  Those of a master
# gone for this long are removed whenever this user's sshpyk starts a master, so the control
# dir does not keep one pair per (ssh, config, alias) ever used; minutes, not seconds, so the
# log of a failed start can still be read after the error was shown.
STALE_AFTER = 10 * 60
_CONTROL_FILE = re.compile(r"(cm-[0-9a-f]{16}(?:-\d+)?)\.(?:log|lock)")


def session_refused(stderr: str) -> bool:
    return SESSION_REFUSED in stderr.lower() or "administratively prohibited" in stderr.lower()


# longest control dir we accept: its sockets (cm-<16 hex>-N, plus the 17 characters ssh adds
# while it creates one) must fit a unix socket path (104 bytes on macOS, 108 on Linux)
MAX_CONTROL_DIR = 60


def control_dir() -> Path:
    """A private (0700, ours, not a symlink) directory short enough for unix socket paths.

    Never a fixed name another local user could create first: ``$XDG_RUNTIME_DIR`` (per
    user, made by the system) when usable; on macOS the per-user ``$TMPDIR``; else a
    directory of random name made by ``mkdtemp`` and remembered in
    ``${XDG_CACHE_HOME:-~/.cache}/sshpyk/control-dir``, so every sshpyk process of the
    user (servers, CLI) shares its masters."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and len(runtime) < 40 and _owned_dir(Path(runtime)):
        return private_dir(Path(runtime) / "sshpyk")
    tmpdir = os.environ.get("TMPDIR", "")
    if sys.platform == "darwin" and tmpdir and len(tmpdir) < MAX_CONTROL_DIR - 7:
        if _owned_dir(Path(tmpdir)):
            return private_dir(Path(tmpdir) / "sshpyk")
    try:
        return _remembered_dir()
    except (OSError, SSHPykError):
        # no writable home to remember it in: a private directory for this process alone
        global _OWN_DIR
        if _OWN_DIR is None or not _owned_dir(_OWN_DIR):
            _OWN_DIR = Path(tempfile.mkdtemp(prefix=f"sshpyk-{os.getuid()}-", dir=_tmp_base()))
        return private_dir(_OWN_DIR)


_OWN_DIR: Path | None = None


def _tmp_base() -> str:
    base = os.environ.get("TMPDIR", "")
    return base if base and len(base) < MAX_CONTROL_DIR - 20 else "/tmp"  # noqa: S108


def _owned_dir(path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()


def _home() -> Path:
    """The account's home from the password database: the same for every process of the
    user, even one started with another $HOME (as test servers are)."""
    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:  # a uid without an entry (containers)
        return Path.home()


def _remembered_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or _home() / ".cache") / "sshpyk"
    cache.mkdir(parents=True, exist_ok=True)
    private_dir(cache)
    pointer = cache / "control-dir"
    fd = os.open(pointer.with_suffix(".lock"), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # local file, held for microseconds
        with contextlib.suppress(OSError, SSHPykError):
            known = Path(pointer.read_text().strip())
            if known.is_absolute() and len(str(known)) <= MAX_CONTROL_DIR:
                return private_dir(known, create=False)
        # gone (tmp cleaned at boot), or not ours any more: a new one
        made = Path(tempfile.mkdtemp(prefix=f"sshpyk-{os.getuid()}-", dir=_tmp_base()))
        tmp = pointer.with_suffix(f".tmp{os.getpid()}")
        try:
            tmp.write_text(str(made) + "\n")
            os.replace(tmp, pointer)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return private_dir(made)
    finally:
        os.close(fd)


def prune_control_dir(older_than: float = STALE_AFTER, keep: Path | None = None) -> list[Path]:
    """Remove the log and lock of every master in the control dir that is gone (no socket,
    or one nobody listens on) and whose files are older than ``older_than`` seconds; never
    those of ``keep`` (a control path).  Returns what was removed."""
    directory = control_dir()
    stems = set()
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            found = _CONTROL_FILE.fullmatch(name)
            if found and (keep is None or found.group(1) != keep.name):
                stems.add(found.group(1))
    removed: list[Path] = []
    for stem in sorted(stems):
        removed += _remove_if_gone(directory / stem, older_than)
    return removed


def _remove_if_gone(control_path: Path, older_than: float) -> list[Path]:
    log, lock = control_path.with_suffix(".log"), control_path.with_suffix(".lock")
    newest = 0.0
    for path in (log, lock):
        with contextlib.suppress(OSError):
            newest = max(newest, path.lstat().st_mtime)
    if newest == 0.0 or time.time() - newest < older_than:
        return []
    # Under the master's start lock: no process is starting it (and writing its log) now,
    # and one that waits for the lock sees it gone and makes a fresh one (see Master._flock).
    try:
        fd = try_flock(lock)
    except OSError:
        return []
    if fd is None:  # being started right now
        return []
    try:
        if not _same_file(fd, lock) or _master_listens(control_path):
            return []
        removed = []
        # the socket too when it is a dead master's: ssh would only remove it on a restart
        for path in (control_path, log, lock):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
        return removed
    except OSError:
        return []
    finally:
        os.close(fd)


def try_flock(path: Path) -> int | None:
    """``path`` opened as a lock file (0600, never through a symlink) and flocked without
    waiting: the fd (closing it releases the lock), or None while another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (it was not removed meanwhile)."""
    try:
        st, open_st = path.lstat(), os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (open_st.st_dev, open_st.st_ino)


def _master_listens(control_path: Path) -> bool:
    """Whether a master may be behind the socket: False only when there is no socket, or
    the system refuses a connection to it (no process listens: the master died)."""
    if not control_path.is_socket():
        return control_path.exists() or control_path.is_symlink()  # not ours to judge
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)  # a full backlog must not block: it means alive
        return probe.connect_ex(str(control_path)) != errno.ECONNREFUSED


def private_dir(path: Path, create: bool = True) -> Path:
    """``path`` as a directory that is ours, not a symlink, and 0700 (made if missing)."""
    if create:
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise SSHPykError(f"{path} is not a directory owned by you; remove it and retry")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a killed child (of ours, or of a non-reaping init) lingers as a zombie: it is dead
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1] not in ("Z", "X")
    except OSError:
        pass
    return True


# ssh processes one fan-out (hosts of a config, checks, orphan probes) runs at once: each
# holds three pipes and, on Python 3.11, a waiter thread; unbounded, a few hundred hosts
# exhaust a 256-fd limit (macOS's default) and starve the rest of the server
SSH_AT_ONCE = 8


async def gather_bounded(work, items) -> list:
    """``[await work(item) for item in items]``, at most ``SSH_AT_ONCE`` at a time."""
    gate = asyncio.Semaphore(SSH_AT_ONCE)

    async def one(item):
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


def free_local_port() -> int:
    """A 127.0.0.1 port free now (for a forward; it may be taken before ssh binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remote_path_expr(path: str) -> str:
    """Shell expression for a remote path: quoted, with a leading ``~/`` meaning $HOME."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


@dataclass(frozen=True)
class Target:
    """Where to connect: validated values only (see sshpyk.model)."""

    alias: str
    ssh: str = "ssh"
    config: str | None = None

    def base_argv(self) -> list[str]:
        argv = [self.ssh]
        if self.config:
            argv += ["-F", self.config]
        return argv

    @property
    def key(self) -> str:
        raw = "\0".join([self.ssh, self.config or "", self.alias]).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


async def reap(proc, grace: float = 2.0) -> None:
    """Kill a local ssh process and wait for it, without ever hanging.

    A mux client hands its stdio to the master, which keeps those pipes open while the
    remote command runs; asyncio only reports the exit once every pipe is closed, so after
    a grace period we close our ends ourselves.
    """
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except asyncio.TimeoutError:
        proc._transport.close()  # no public API closes the pipes of a running Process


async def run_local(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """A local command (``ssh -V``, ``ssh -G``): (rc, stdout, stderr); rc 124 on timeout."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await _communicate(proc, None, timeout)
    except asyncio.TimeoutError:
        return 124, "", f"timed out after {timeout:g}s"
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def _communicate(proc, data: bytes | None, timeout: float) -> tuple[bytes, bytes]:
    try:
        return await asyncio.wait_for(proc.communicate(data), timeout)
    except asyncio.TimeoutError:
        await reap(proc)
        raise


class Master:
    """The shared connection to one host; every kernel on that host rides on it."""

    _instances: dict[str, Master] = {}

    def __init__(self, target: Target, shard: int = 0):
        self.target = target
        self.shard = shard
        suffix = f"-{shard}" if shard else ""
        self.control_path = control_dir() / f"cm-{target.key}{suffix}"
        # one lock per event loop: a lock bound to a finished loop would break the next one
        self._locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.spawns = 0  # ssh processes started for this host, for tests and benchmarks
        self.generation = 0  # +1 per connection made by this process
        # Which master process answers on the socket now: (pid, socket inode).  Any sshpyk
        # process of the user (a second server, `sshpyk ps`) may replace a dead master, and
        # forwards die with the master that held them, so this, not ``generation``, tells
        # whether a kernel's forwards are still there.
        self.identity: tuple[int, int] | None = None
        # (identity, transport) of masters that have opened a forwarded channel: the sshd
        # allows that kind of forwarding on that connection (see the provisioner's _forward)
        self.forwarding_works: set[tuple] = set()

    @classmethod
    def for_target(cls, target: Target, shard: int = 0) -> Master:
        """The host's connection number ``shard``: more than one only when the host refuses
        more sessions on one connection (sshd's MaxSessions, 10 by default)."""
        key = f"{target.key}-{shard}"
        master = cls._instances.get(key)
        if master is None:
            master = cls._instances[key] = cls(target, shard)
        return master

    def next_shard(self) -> Master | None:
        return Master.for_target(self.target, self.shard + 1) if self.shard + 1 < SHARDS else None

    # ---- argv ------------------------------------------------------------------------------
    def _mux(self) -> list[str]:
        return [
            *self.target.base_argv(),
            "-o",
            f"ControlPath={self.control_path}",
            "-o",
            "ControlMaster=no",
            "-o",
            "BatchMode=yes",
            "-o",
            "ProxyCommand=false",
        ]

    async def _spawn(self, argv: list[str], **kw):
        self.spawns += 1
        return await asyncio.create_subprocess_exec(*argv, **kw)

    # ---- lifecycle -------------------------------------------------------------------------
    async def is_alive(self) -> bool:
        """Whether a master answers on the socket; sets ``identity`` to the one that does."""
        try:
            inode = self.control_path.lstat().st_ino
        except OSError:
            inode = None
        if inode is None or not self.control_path.is_socket():
            self.identity = None
            return False
        proc = await self._spawn(
            [*self._mux(), "-O", "check", "--", self.target.alias],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await _communicate(proc, None, 5)
        except asyncio.TimeoutError:
            self.identity = None
            return False
        # "Master running (pid=N)"
        found = re.search(rb"pid=(\d+)", err)
        alive = proc.returncode == 0
        self.identity = (int(found.group(1)) if found else 0, inode) if alive else None
        return alive

    async def ensure(self, timeout: float) -> None:
        """Make sure the master is up: reuse it when alive, else connect (one handshake).

        Every sshpyk process of the user shares the socket, so starting one is done under
        an flock of ``<control_path>.lock``: of processes (or event loops) starting at once,
        one connects and the others use its master, instead of each starting an ssh that
        finds the socket taken and runs on, unshared and never ended."""
        loop = asyncio.get_running_loop()
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            if await self.is_alive():
                return
            deadline = loop.time() + timeout
            fd = await self._flock(deadline)
            try:
                if await self.is_alive():  # another process made it meanwhile
                    return
                # a master is to be started: a good moment to forget those long gone (local
                # files only, a few syscalls)
                with contextlib.suppress(OSError, SSHPykError):
                    prune_control_dir(keep=self.control_path)
                await self._start(max(1.0, deadline - loop.time()))
                await self.is_alive()
            finally:
                os.close(fd)  # releases the flock

    async def _flock(self, deadline: float) -> int:
        """The start lock, polled without blocking the event loop."""
        path = self.control_path.with_suffix(".lock")
        while True:
            fd = try_flock(path)
            if fd is not None:
                if _same_file(fd, path):
                    return fd
                os.close(fd)  # removed by prune_control_dir meanwhile: lock the one there now
                continue
            if asyncio.get_running_loop().time() >= deadline:
                raise SSHConnectError(
                    f"another sshpyk process is still connecting to {self.target.alias!r}",
                    kind="unreachable",
                )
            await asyncio.sleep(0.05)

    async def _direct_transport(self) -> list[str]:
        """For a host ssh reaches directly: ``-o`` options that make ssh use a TCP socket
        tuned by ``tcp_connect`` (quick resumption after a cut).  Nothing otherwise."""
        from .sshconfig import parse_ssh_g

        rc, out, _ = await run_local([*self.target.base_argv(), "-G", "--", self.target.alias], 10)
        if rc != 0:
            return []  # ssh will say what is wrong when it connects
        opts = parse_ssh_g(out)
        if any(opts.get(k, ["none"])[0] != "none" for k in ("proxycommand", "proxyjump")):
            return []
        wait = opts.get("connecttimeout", ["none"])[0]
        wait = wait if wait.isdigit() else "30"
        # -I -S: a stdlib-only file, so no site-packages scan on every connect
        log = shlex.quote(str(self.control_path.with_suffix(".log")))
        cmd = (
            f"{shlex.quote(sys.executable)} -I -S {shlex.quote(str(TCP_CONNECT))} "
            f"%h %p {wait} {log}"
        )
        return ["-o", f"ProxyCommand={cmd}", "-o", "ProxyUseFdpass=yes"]

    async def _start(self, timeout: float) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()  # a stale socket of a dead master
        direct = await self._direct_transport()
        log = self.control_path.with_suffix(".log")
        # O_APPEND: ssh and its ProxyCommand (tcp_connect) both write to it
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        argv = [
            *self.target.base_argv(),
            "-o",
            "ControlMaster=yes",
            "-o",
            f"ControlPath={self.control_path}",
            "-o",
            f"ControlPersist={CONTROL_PERSIST}",
            "-o",
            "BatchMode=yes",
            "-o",
            f"ServerAliveInterval={SERVER_ALIVE_INTERVAL}",
            "-o",
            f"ServerAliveCountMax={SERVER_ALIVE_COUNT}",
            "-o",
            "ExitOnForwardFailure=no",
            *direct,
            "-N",
            "-f",
            "--",
            self.target.alias,
        ]
        try:
            # -f: ssh forks into the background once authenticated, so exit 0 = ready.
            # Its stderr goes to a file: the daemon keeps it open, a pipe would never EOF.
            proc = await self._spawn(
                argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=fd
            )
        finally:
            os.close(fd)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            await reap(proc)
            raise SSHConnectError(
                f"connecting to {self.target.alias!r} timed out after {timeout:g}s "
                "(host unreachable or not answering)",
                kind="unreachable",
            ) from None
        if proc.returncode != 0:
            raise classify_ssh_failure(log.read_text(errors="replace"), self.target.alias)
        self.generation += 1

    async def exit(self) -> None:
        if self.control_path.is_socket():
            proc = await self._spawn(
                [*self._mux(), "-O", "exit", "--", self.target.alias],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await _communicate(proc, None, 5)
            for _ in range(100):  # the master removes its socket as it ends
                if not self.control_path.exists():
                    break
                await asyncio.sleep(0.02)
        # gone: its log and lock are of no more use (kept if another process restarted it)
        with contextlib.suppress(OSError):
            _remove_if_gone(self.control_path, older_than=0)

    # ---- use -------------------------------------------------------------------------------
    async def open_session(
        self, remote_command: str, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    ):
        """A remote command on the master, with pipes (or the given fds): the caller owns
        the process."""
        return await self._spawn(
            [*self._mux(), "-T", "--", self.target.alias, remote_command],
            stdin=stdin,
            stdout=stdout,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(
        self, remote_command: str, *, input: bytes | None = None, timeout: float = 30
    ) -> tuple[int, str, str]:
        proc = await self.open_session(remote_command)
        out, err = await _communicate(proc, input, timeout)
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    async def _control(self, op: str, specs: list[str], timeout: float = 10) -> tuple[int, str]:
        argv = [*self._mux(), "-O", op]
        for spec in specs:
            argv += ["-L", spec]
        proc = await self._spawn(
            [*argv, "--", self.target.alias],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await _communicate(proc, None, timeout)
        return proc.returncode, err.decode(errors="replace").strip()

    async def forward(self, specs: list[str]) -> tuple[bool, str]:
        """Add ``-L`` forwards to the master in one call; (all ok, ssh's message)."""
        rc, err = await self._control("forward", specs)
        return rc == 0, err

    async def cancel(self, specs: list[str]) -> None:
        await self._control("cancel", specs)


async def channel_answers(port: int, timeout: float = 5.0) -> bool | None:
    """Whether a forward on 127.0.0.1:``port`` reaches a ZeroMQ peer: True when the peer's
    greeting arrives (ZMTP: it sends one at once, first byte 0xFF), False when ssh ends the
    connection (it does so when the host refuses the channel: forwarding forbidden, or
    nothing listens there), None when nothing came within ``timeout`` (a slow link: no
    verdict)."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        first = await asyncio.wait_for(reader.read(1), timeout)
    except asyncio.TimeoutError:
        return None
    except OSError:
        return False  # nothing listens locally: the forward itself is gone
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1)
    return first == b"\xff"
