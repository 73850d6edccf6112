"""Where the SFTP server's paths may lead: the shared directory and nothing else.

The remote side of a mount is not trusted: every path it sends is resolved inside the share
by one of two resolvers, chosen once when the server starts (``choose``), with one
interface (``open``, ``parent``, ``stat``, ``statvfs``, ``attr_target``):

``Openat2`` (Linux >= 5.6): the kernel confines.  ``openat2(root_fd, path,
RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`` treats the share as ``/`` the way chroot does:
``..`` stops at it, absolute paths and absolute symlinks start at it, and a symlink, inside
the share or not, is followed but can never lead outside.

``Walk`` (macOS, BSD, Linux < 5.6, a kernel or seccomp profile that answers ENOSYS/EPERM, an
ABI whose openat2 number we do not know): the path is normalised lexically first (``..``
never above the share), then each directory component is opened from its parent's fd with
``O_NOFOLLOW | O_DIRECTORY``, and the operation acts on the last component by name from its
parent's fd without following it (``O_NOFOLLOW``, ``follow_symlinks=False``, the ``*at``
calls).  No symlink is ever followed, so neither a symlink (inside or outside the share) nor
a rename racing the walk (a directory swapped for a symlink) can take an operation outside:
each step starts from an fd that is inside and refuses a link.  (With either resolver, a
directory that a local process moves out of the share while a request is on its way there
is the local user's own doing: the remote can only rename inside the share.)  What differs
from ``Openat2``:

- a symlink is never followed by the server: a request that would follow one (OPEN, OPENDIR,
  STAT, SETSTAT, statvfs, or any path through a symlink to a directory, even one inside the
  share) is refused with permission denied (ELOOP).  LSTAT, READLINK, REMOVE, RENAME,
  SYMLINK and hardlink act on the link itself, as with openat2.  sshpyk's remote sshfs runs
  with ``follow_symlinks`` (its passive mode cannot read links), so through a mount served
  by the walk a symlink in the share, even ``a -> b`` next to ``b``, cannot be used: the
  remote sees permission denied.  Real files and directories are served alike.
- ``..`` is lexical: ``missing/../x`` is ``x`` (openat2 says "no such file").  For paths
  without symlinks lexical and physical are the same.
- where the OS has no ``O_PATH`` (macOS, BSD) directories are opened for reading on the way:
  a directory one may search but not read cannot be walked through.

No raw syscall is ever made where openat2's number is not known (``choose`` takes the walk
at once): an unknown number is another call, or a fatal SIGSYS (XNU), rather than an error.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import platform
import stat
import sys
import sysconfig

# --- openat2(2) -----------------------------------------------------------------------------
RESOLVE_NO_MAGICLINKS, RESOLVE_IN_ROOT = 0x02, 0x10
O_PATH = getattr(os, "O_PATH", 0)  # Linux only; 0 elsewhere (never another flag's bits)
EAGAIN_RETRIES = 32  # openat2 says EAGAIN when a rename/mount raced with a ".." lookup
# Linux numbers new syscalls alike on every architecture since 5.1 (437 = openat2), except
# these offset tables; an architecture in neither list is refused, never guessed.
_UNIFIED = (
    "x86_64", "amd64", "i386", "i486", "i586", "i686", "aarch64", "arm", "riscv", "ppc",
    "powerpc", "s390", "loongarch", "sparc", "parisc", "m68k", "sh", "xtensa", "microblaze",
    "arc", "csky", "or1k", "openrisc", "nios2", "hexagon",
)  # fmt: skip


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class Unsupported(OSError):
    """openat2 is not there (the server walks instead)."""


@functools.cache
def _linux_number(machine: str, multiarch: str, pointer: int) -> int | None:
    if machine.startswith("alpha"):
        return 547
    if machine.startswith("ia64"):
        return 1461
    if machine.startswith("mips"):
        if pointer == 8:
            return 5437  # n64
        if "abin32" in multiarch:
            return 6437
        return 4437 if multiarch.startswith("mips") else None  # o32, or unknown
    if "x32" in multiarch:
        return None  # x32 numbers carry a flag bit: not worth guessing
    return 437 if machine.startswith(_UNIFIED) else None


def openat2_number() -> int | None:
    """openat2's syscall number for this process, or None: then no raw syscall at all."""
    if sys.platform != "linux":
        return None
    return _linux_number(
        platform.machine().lower(),
        sysconfig.get_config_var("MULTIARCH") or "",
        ctypes.sizeof(ctypes.c_void_p),
    )


@functools.cache
def _libc():
    # only ever loaded on Linux, after openat2_number() (CDLL(None) fails on Windows)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def openat2(dirfd: int, path: bytes, flags: int, mode: int = 0) -> int:
    if b"\0" in path:
        raise OSError(errno.EINVAL, "NUL in path")
    number = openat2_number()
    if number is None:
        raise Unsupported(errno.ENOSYS, f"no known openat2 number on {platform.machine()}")
    # openat2 insists on mode 0 unless a file may be created
    mode = mode if flags & os.O_CREAT else 0
    how = _OpenHow(flags | os.O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    retries = EAGAIN_RETRIES
    while True:
        fd = _libc().syscall(
            ctypes.c_long(number),
            ctypes.c_int(dirfd),
            ctypes.c_char_p(path or b"."),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err == errno.EINTR:
            continue
        if err == errno.EAGAIN and retries > 0:
            retries -= 1
            continue
        if err == errno.ENOSYS:
            raise Unsupported(err, "openat2 is not available (Linux >= 5.6 needed)")
        if err == errno.EXDEV:  # the lookup would have left the root (a racing rename)
            err = errno.EACCES
        raise OSError(err, os.strerror(err), path.decode(errors="replace"))


# --- the path of a name ---------------------------------------------------------------------
def split_parent(path: bytes) -> tuple[bytes, bytes]:
    """(parent, last component); the last component is never ``.``/``..``/empty."""
    stripped = path.rstrip(b"/")
    parent, _, name = stripped.rpartition(b"/")
    if b"\0" in path:
        raise OSError(errno.EINVAL, "NUL in path")
    if name in (b"", b".", b".."):
        raise OSError(errno.EPERM, "not allowed on this path")
    return (parent or (b"/" if stripped.startswith(b"/") else b".")), name


def components(path: bytes) -> list[bytes]:
    """The path's names, ``.`` dropped and ``..`` taken lexically, never above the root."""
    if b"\0" in path:
        raise OSError(errno.EINVAL, "NUL in path")
    out: list[bytes] = []
    for part in path.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if out:
                out.pop()
        else:
            out.append(part)
    return out


# --- the two resolvers ----------------------------------------------------------------------
class Openat2:
    """The kernel confines (RESOLVE_IN_ROOT): symlinks are followed, inside the share."""

    name = "openat2"

    def __init__(self, root: int):
        self.root = root

    def open(self, path: bytes, flags: int, mode: int = 0) -> int:
        return openat2(self.root, path, flags, mode)

    def parent(self, path: bytes) -> tuple[int, bytes]:
        parent, name = split_parent(path)
        return self.open(parent, O_PATH | os.O_DIRECTORY), name

    def stat(self, path: bytes) -> os.stat_result:
        fd = self.open(path, O_PATH)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def statvfs(self, path: bytes) -> os.statvfs_result:
        fd = self.open(path, O_PATH)
        try:
            return os.fstatvfs(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def attr_target(self, path: bytes):
        """(name, dir_fd, follow) for chmod/utime/open: the O_PATH fd's /proc link is the
        file itself (fchmod and futimens refuse O_PATH fds)."""
        fd = self.open(path, O_PATH)
        try:
            yield f"/proc/self/fd/{fd}", None, True
        finally:
            os.close(fd)


# directories on the way: O_PATH where there is one (no read permission needed)
# (getattr: this module is imported on Windows too, where mounts are refused)
_DIR = (O_PATH or os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0)
_DIR |= getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


class Walk:
    """Component by component from the share's fd, never following a symlink."""

    name = "walk"

    def __init__(self, root: int):
        self.root = root

    @staticmethod
    def _open(name: bytes, flags: int, mode: int, pfd: int) -> int:
        """openat(pfd, name) with O_NOFOLLOW; a symlink is ELOOP (permission denied), also
        where O_DIRECTORY made it ENOTDIR (no such file, which it is not)."""
        try:
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=pfd)
        except NotADirectoryError:
            if stat.S_ISLNK(os.stat(name, dir_fd=pfd, follow_symlinks=False).st_mode):
                raise OSError(errno.ELOOP, "a symlink: the server never follows one") from None
            raise

    def _dir(self, names: list[bytes]) -> int:
        """A new fd of the directory ``names`` (each one a real directory, no symlink)."""
        fd = os.open(b".", _DIR, dir_fd=self.root)
        for name in names:
            try:
                fd, old = self._open(name, _DIR, 0, fd), fd
            except OSError:
                os.close(fd)
                raise
            os.close(old)
        return fd

    def _last(self, path: bytes) -> tuple[int, bytes | None]:
        """(fd of the parent directory, last name), or (a new fd of the root, None)."""
        names = components(path)
        if not names:
            return self._dir([]), None
        return self._dir(names[:-1]), names[-1]

    def open(self, path: bytes, flags: int, mode: int = 0) -> int:
        pfd, name = self._last(path)
        try:
            if name is None:
                return self._open(b".", flags, mode, pfd)
            if path.rpartition(b"/")[2] in (b"", b".", b"..") and not flags & os.O_CREAT:
                flags |= os.O_DIRECTORY  # "name/" is a directory or nothing, as in a lookup
            return self._open(name, flags, mode, pfd)
        finally:
            os.close(pfd)

    def parent(self, path: bytes) -> tuple[int, bytes]:
        parent, name = split_parent(path)
        return self._dir(components(parent)), name

    def _lstat_no_link(self, pfd: int, name: bytes) -> os.stat_result:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise OSError(errno.ELOOP, "a symlink: the server never follows one")
        return st

    def stat(self, path: bytes) -> os.stat_result:
        pfd, name = self._last(path)
        try:
            return os.fstat(pfd) if name is None else self._lstat_no_link(pfd, name)
        finally:
            os.close(pfd)

    def statvfs(self, path: bytes) -> os.statvfs_result:
        pfd, name = self._last(path)
        try:
            if name is None or not stat.S_ISDIR(self._lstat_no_link(pfd, name).st_mode):
                return os.fstatvfs(pfd)  # a file is on its directory's file system
            fd = self._open(name, _DIR, 0, pfd)  # a directory may be a mount point
            try:
                return os.fstatvfs(fd)
            finally:
                os.close(fd)
        finally:
            os.close(pfd)

    @contextlib.contextmanager
    def attr_target(self, path: bytes):
        """(name, dir_fd, follow): the name from its parent's fd, never followed."""
        pfd, name = self._last(path)
        try:
            if name is None:
                yield ".", pfd, False
            else:
                self._lstat_no_link(pfd, name)  # the *at calls below never follow either
                yield name, pfd, False
        finally:
            os.close(pfd)


Resolver = Openat2 | Walk


def walk_possible() -> bool:
    """Whether this OS has what the walk needs (every POSIX system Python runs on)."""
    return (
        os.open in os.supports_dir_fd
        and os.stat in os.supports_follow_symlinks
        and hasattr(os, "O_NOFOLLOW")
        and hasattr(os, "O_DIRECTORY")
    )


def unsupported_reason() -> str | None:
    """Why this system cannot serve a share confined (None: it can)."""
    if walk_possible():
        return None
    return (
        "SSHFS mounts need a POSIX system (Linux, macOS, BSD) on the Jupyter server's "
        f"machine, not {sys.platform}"
    )


def choose(root: int) -> Resolver:
    """openat2 where the kernel has it, else the walk.  Makes no raw syscall where openat2's
    number is not known (off Linux, or an unknown ABI)."""
    try:
        os.close(openat2(root, b".", O_PATH | os.O_DIRECTORY))
    except Unsupported:
        return Walk(root)
    except OSError as e:
        if e.errno != errno.EPERM:  # a seccomp profile's answer to an unknown syscall
            raise
        return Walk(root)
    return Openat2(root)


def check_supported(root: str) -> str:
    """The resolver that would serve ``root`` ("openat2"/"walk"); raises ``OSError`` when
    it cannot be served."""
    reason = unsupported_reason()
    if reason is not None:
        raise Unsupported(reason)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return choose(fd).name
    finally:
        os.close(fd)
