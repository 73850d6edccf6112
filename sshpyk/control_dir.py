"""The control dir: where this user's ssh ControlMaster sockets live, and its housekeeping.

One directory per user, shared by every sshpyk process of that user (servers, CLI), so they
share their masters.  It must be private (a socket there is a logged-in connection) and
short: every unix socket sshpyk makes locally lives here (masters' ``cm-*``, the askpass
bridge's ``login-*.sock``) and must fit ``SOCKET_PATH_MAX`` whatever the runtime directory
is (a unix socket path holds 104 bytes on macOS, 108 on Linux; macOS's ``$TMPDIR`` is long).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

from .errors import SSHPykError
from .localfs import owned_dir, private_dir, same_file, try_flock

# bytes of the longest unix socket path sshpyk makes: macOS's sun_path holds 104, Linux's 108
SOCKET_PATH_MAX = 100
# the longest socket name in the control dir: a master's cm-<16 hex>-<shard>, with the 17
# characters ssh adds while it creates one (login-<12 hex>.sock, the askpass's, is shorter)
LONGEST_SOCKET_NAME = len("cm-") + 16 + len("-99") + 17
# longest control dir we accept, so that every socket in it fits SOCKET_PATH_MAX
MAX_CONTROL_DIR = SOCKET_PATH_MAX - 1 - LONGEST_SOCKET_NAME
_RANDOM = 8  # characters mkdtemp adds
# A master leaves ``<control_path>.log`` and ``.lock`` behind when it ends.  Those of a master
# gone for this long are removed whenever this user's sshpyk starts a master, so the control
# dir does not keep one pair per (ssh, config, alias) ever used; minutes, not seconds, so the
# log of a failed start can still be read after the error was shown.
STALE_AFTER = 10 * 60
_CONTROL_FILE = re.compile(r"(cm-[0-9a-f]{16}(?:-\d+)?)\.(?:log|lock)")


def control_dir() -> Path:
    """A private (0700, ours, not a symlink) directory short enough for unix socket paths.

    Never a fixed name another local user could create first: ``$XDG_RUNTIME_DIR`` (per
    user, made by the system) when usable; on macOS the per-user ``$TMPDIR``; else a
    directory of random name made by ``mkdtemp`` and remembered in
    ``${XDG_CACHE_HOME:-~/.cache}/sshpyk/control-dir``, so every sshpyk process of the
    user (servers, CLI) shares its masters."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and _bytes(runtime) < 40 and owned_dir(Path(runtime)):
        return private_dir(Path(runtime) / "sshpyk")
    tmpdir = os.environ.get("TMPDIR", "")
    if sys.platform == "darwin" and tmpdir and _bytes(tmpdir) < MAX_CONTROL_DIR - 7:
        if owned_dir(Path(tmpdir)):
            return private_dir(Path(tmpdir) / "sshpyk")
    try:
        return _remembered_dir()
    except (OSError, SSHPykError):
        # no writable home to remember it in: a private directory for this process alone
        global _OWN_DIR
        if _OWN_DIR is None or not owned_dir(_OWN_DIR):
            _OWN_DIR = Path(tempfile.mkdtemp(prefix=f"sshpyk-{os.getuid()}-", dir=_tmp_base()))
        return private_dir(_OWN_DIR)


_OWN_DIR: Path | None = None


def _bytes(path: str) -> int:
    """A path's length as the system counts it (a non-ASCII name takes more than one)."""
    return len(os.fsencode(path))


def _tmp_base() -> str:
    """$TMPDIR when a directory made in it fits MAX_CONTROL_DIR, else /tmp (mkdtemp's 0700
    directory of random name: never a fixed name another local user could make first)."""
    base = os.environ.get("TMPDIR", "").rstrip("/")
    made = _bytes(base) + len(f"/sshpyk-{os.getuid()}-") + _RANDOM
    return base if base and made <= MAX_CONTROL_DIR else "/tmp"  # noqa: S108


def _home() -> Path:
    """The account's home from the password database: the same for every process of the
    user, even one started with another $HOME (as test servers are)."""
    import pwd  # POSIX only: imported here so that native Windows gets its refusal

    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:  # a uid without an entry (containers)
        return Path.home()


def _remembered_dir() -> Path:
    import fcntl  # POSIX only (see _home)

    cache = Path(os.environ.get("XDG_CACHE_HOME") or _home() / ".cache") / "sshpyk"
    cache.mkdir(parents=True, exist_ok=True)
    private_dir(cache)
    pointer = cache / "control-dir"
    fd = os.open(pointer.with_suffix(".lock"), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # local file, held for microseconds
        with contextlib.suppress(OSError, SSHPykError):
            known = Path(pointer.read_text().strip())
            if known.is_absolute() and _bytes(str(known)) <= MAX_CONTROL_DIR:
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
        removed += remove_if_gone(directory / stem, older_than)
    return removed


def remove_if_gone(control_path: Path, older_than: float) -> list[Path]:
    """The socket, log and lock of the master at ``control_path``, removed when that master
    is gone and its files are older than ``older_than`` seconds; returns what was removed."""
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
        if not same_file(fd, lock) or _master_listens(control_path):
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


def _master_listens(control_path: Path) -> bool:
    """Whether a master may be behind the socket: False only when there is no socket, or
    the system refuses a connection to it (no process listens: the master died)."""
    if not control_path.is_socket():
        return control_path.exists() or control_path.is_symlink()  # not ours to judge
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)  # a full backlog must not block: it means alive
        return probe.connect_ex(str(control_path)) != errno.ECONNREFUSED
