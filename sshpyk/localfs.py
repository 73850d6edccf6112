"""Files of this user on the local host: private directories and lock files.

sshpyk keeps its masters' sockets, the kernel registry and its locks in directories no other
local user can write to or plant a symlink in; every helper here refuses what is not ours.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from .errors import SSHPykError


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


def owned_dir(path: Path) -> bool:
    """Whether ``path`` is a directory (symlinks followed) owned by this user."""
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()


def try_flock(path: Path) -> int | None:
    """``path`` opened as a lock file (0600, never through a symlink) and flocked without
    waiting: the fd (closing it releases the lock), or None while another process holds it."""
    import fcntl  # POSIX only: imported here so that native Windows gets its refusal

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


def same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (it was not removed meanwhile)."""
    try:
        st, open_st = path.lstat(), os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (open_st.st_dev, open_st.st_ino)
