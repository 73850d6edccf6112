"""A confined SFTP v3 server for SSHFS mounts: serves one local directory and nothing else.

The remote ``sshfs -o passive`` speaks SFTP over its stdin/stdout; sshpyk wires those,
through an ssh session on the kernel host's master connection, to this program's
stdin/stdout (see ``sshpyk.mounts``).  So there is no listening socket, no local sshd,
no key, and the only thing the remote side can ever do is send the SFTP requests below.

Every path is confined to the shared directory by ``sshpyk.confine``, chosen once at start:
``openat2(root_fd, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`` where the kernel has it
(Linux >= 5.6; the share is ``/`` as in a chroot, symlinks are followed inside it), else a
component-by-component walk from the share's fd that never follows a symlink (macOS, BSD,
older Linux; what it refuses is in ``confine``'s docstring).  Operations on a name (lstat,
mkdir, rename, ...) resolve the parent that way and then act on the last component relative
to the parent's fd, never following it.  Lexical path checks alone would race against
symlinks swapped in meanwhile; these cannot.  The server says which one it runs on stderr
(``CONFINED_BY``), once, before it serves.

The remote side is not trusted: modes it sends lose their setuid/setgid/sticky bits, owner
changes are ignored, and with ``--read-only`` every request that would change the share is
refused here, whatever the remote's sshfs was told.

Blocking and single-threaded on purpose: it runs as its own process (never in the Jupyter
server's event loop), and sshfs already pipelines requests, so a plain loop keeps up with
the ssh cipher.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import signal
import stat
import struct
import sys
import threading
import time

from . import confine, no_openat2

# --- protocol constants (draft-ietf-secsh-filexfer-02 = version 3, what OpenSSH speaks) ---
INIT, VERSION, OPEN, CLOSE, READ, WRITE, LSTAT, FSTAT, SETSTAT, FSETSTAT = range(1, 11)
OPENDIR, READDIR, REMOVE, MKDIR, RMDIR, REALPATH, STAT, RENAME, READLINK, SYMLINK = range(11, 21)
STATUS, HANDLE, DATA, NAME, ATTRS = 101, 102, 103, 104, 105
EXTENDED, EXTENDED_REPLY = 200, 201

FX_OK, FX_EOF, FX_NO_SUCH_FILE, FX_PERMISSION_DENIED, FX_FAILURE = 0, 1, 2, 3, 4
FX_BAD_MESSAGE, FX_OP_UNSUPPORTED = 5, 8

ATTR_SIZE, ATTR_UIDGID, ATTR_PERMISSIONS, ATTR_ACMODTIME, ATTR_EXTENDED = 1, 2, 4, 8, 0x80000000
PF_READ, PF_WRITE, PF_APPEND, PF_CREAT, PF_TRUNC, PF_EXCL = 1, 2, 4, 8, 0x10, 0x20

EXTENSIONS = {
    b"posix-rename@openssh.com": b"1",
    b"statvfs@openssh.com": b"2",
    b"hardlink@openssh.com": b"1",
    b"fsync@openssh.com": b"1",
}

MAX_PACKET = 256 * 1024 + 1024  # sshfs sends at most 64 KiB of data per request
MAX_READ = 256 * 1024
MAX_HANDLES = 1024
READDIR_BATCH = 128
INIT_PACKET = struct.pack(">IBI", 5, INIT, 3)
MAX_NOISE = 64 * 1024
MAX_OFFSET = (1 << 63) - 1  # off_t: larger offsets and sizes are refused, not crashed on
# modes from the remote keep only the permission bits: no setuid/setgid/sticky file, made by
# the untrusted side, ever appears in the local share
MODE_MASK = 0o777
WRITE_PFLAGS = PF_WRITE | PF_APPEND | PF_CREAT | PF_TRUNC | PF_EXCL
# what a read-only share refuses (OPEN is refused by its flags, EXTENDED by name)
WRITE_REQUESTS = {WRITE, SETSTAT, FSETSTAT, REMOVE, MKDIR, RMDIR, RENAME, SYMLINK}
WRITE_EXTENSIONS = {b"posix-rename@openssh.com", b"hardlink@openssh.com"}
ST_RDONLY = 1
CONFINED_BY = "sshpyk sftp: paths confined by "  # + the resolver's name, on stderr at start

_ERRNO_STATUS = {
    errno.ENOENT: FX_NO_SUCH_FILE,
    errno.ENOTDIR: FX_NO_SUCH_FILE,
    errno.EACCES: FX_PERMISSION_DENIED,
    errno.EPERM: FX_PERMISSION_DENIED,
    # a rename or link across file systems inside the share: a plain failure, which sshfs's
    # workaround=renamexdev turns back into EXDEV so that `mv` falls back to copying
    # (openat2's own EXDEV, a path leaving the root, is made EACCES in confine.openat2())
    errno.EXDEV: FX_FAILURE,
    errno.ELOOP: FX_PERMISSION_DENIED,
    errno.EROFS: FX_PERMISSION_DENIED,
}


class Failure(Exception):
    def __init__(self, code: int, message: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message


# --- wire helpers ---------------------------------------------------------------------------
class Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0

    def u32(self) -> int:
        if self.pos + 4 > len(self.buf):
            raise Failure(FX_BAD_MESSAGE, "truncated packet")
        (v,) = struct.unpack_from(">I", self.buf, self.pos)
        self.pos += 4
        return v

    def u64(self) -> int:
        if self.pos + 8 > len(self.buf):
            raise Failure(FX_BAD_MESSAGE, "truncated packet")
        (v,) = struct.unpack_from(">Q", self.buf, self.pos)
        self.pos += 8
        return v

    def view(self):
        """A string field without copying it (valid while the packet is)."""
        n = self.u32()
        if self.pos + n > len(self.buf):
            raise Failure(FX_BAD_MESSAGE, "truncated packet")
        v = self.buf[self.pos : self.pos + n]
        self.pos += n
        return v

    def string(self) -> bytes:
        return bytes(self.view())

    def attrs(self) -> dict:
        flags = self.u32()
        a: dict = {}
        if flags & ATTR_SIZE:
            a["size"] = self.u64()
        if flags & ATTR_UIDGID:
            a["uid"], a["gid"] = self.u32(), self.u32()
        if flags & ATTR_PERMISSIONS:
            a["perm"] = self.u32()
        if flags & ATTR_ACMODTIME:
            a["atime"], a["mtime"] = self.u32(), self.u32()
        if flags & ATTR_EXTENDED:
            for _ in range(self.u32()):
                self.string(), self.string()
        return a


def s(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def encode_attrs(st: os.stat_result) -> bytes:
    return struct.pack(
        ">IQIIIII",
        ATTR_SIZE | ATTR_UIDGID | ATTR_PERMISSIONS | ATTR_ACMODTIME,
        st.st_size,
        st.st_uid,
        st.st_gid,
        st.st_mode,
        int(st.st_atime) & 0xFFFFFFFF,
        int(st.st_mtime) & 0xFFFFFFFF,
    )


def longname(name: bytes, st: os.stat_result) -> bytes:
    return b"%s %3d %-8d %-8d %8d %s" % (
        stat.filemode(st.st_mode).encode(),
        st.st_nlink,
        st.st_uid,
        st.st_gid,
        st.st_size,
        name,
    )


def offset(value: int) -> int:
    if value > MAX_OFFSET:
        raise Failure(FX_BAD_MESSAGE, "offset or size out of range")
    return value


def realpath(path: bytes) -> bytes:
    """Lexical, clamped at the root: what the client should call this path."""
    return b"/" + b"/".join(confine.components(path))


class Handle:
    __slots__ = ("entries", "fd", "is_dir")

    def __init__(self, fd: int, is_dir: bool):
        self.fd = fd
        self.is_dir = is_dir
        self.entries = None


class Server:
    def __init__(self, root: str, rfd: int = 0, wfd: int = 1, read_only: bool = False):
        self.root = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self.paths = confine.choose(self.root)
        except BaseException:
            os.close(self.root)
            raise
        self.read_only = read_only
        self.rfd, self.wfd = rfd, wfd
        self.handles: dict[int, Handle] = {}
        self.next_handle = 1
        self.inbuf = bytearray()
        self.start = 0  # where the unread input begins in inbuf
        self.out: list[bytes] = []
        self.out_bytes = 0

    # ---- io --------------------------------------------------------------------------------
    def _fill(self, n: int) -> bool:
        """Make ``n`` bytes available at ``self.start``; replies wait in ``self.out`` until
        we would block, so a burst of requests costs one write."""
        if len(self.inbuf) - self.start >= n:
            return True
        if self.start:
            del self.inbuf[: self.start]
            self.start = 0
        while len(self.inbuf) < n:
            self.flush()
            chunk = os.read(self.rfd, max(n - len(self.inbuf), 1 << 18))
            if not chunk:
                return False
            self.inbuf += chunk
        return True

    def read_packet(self) -> memoryview | None:
        """The next packet, as a view into the input buffer: release it before reading on."""
        if not self._fill(4):
            return None
        (n,) = struct.unpack_from(">I", self.inbuf, self.start)
        if n == 0 or n > MAX_PACKET:
            raise Failure(FX_BAD_MESSAGE, f"packet length {n} out of range")
        if not self._fill(4 + n):
            return None
        view = memoryview(self.inbuf)[self.start + 4 : self.start + 4 + n]
        self.start += 4 + n
        return view

    def send(self, *parts: bytes) -> None:
        size = sum(len(p) for p in parts)
        self.out.append(struct.pack(">I", size))
        self.out.extend(parts)
        self.out_bytes += size
        if self.out_bytes > 1 << 20 or len(self.out) > 512:
            self.flush()

    def flush(self) -> None:
        data, self.out, self.out_bytes = self.out, [], 0
        while data:
            n = os.writev(self.wfd, data)
            while n:
                if n >= len(data[0]):
                    n -= len(data[0])
                    data.pop(0)
                else:
                    data[0] = data[0][n:]
                    n = 0

    def status(self, rid: int, code: int, message: str = "") -> None:
        self.send(struct.pack(">BII", STATUS, rid, code), s(message.encode()), s(b"en"))

    # ---- path resolution -------------------------------------------------------------------
    def open_path(self, path: bytes, flags: int, mode: int = 0) -> int:
        return self.paths.open(path, flags, mode)

    def parent_fd(self, path: bytes) -> tuple[int, bytes]:
        return self.paths.parent(path)

    def handle(self, r: Reader) -> Handle:
        raw = r.string()
        h = self.handles.get(int.from_bytes(raw, "big")) if len(raw) == 4 else None
        if h is None:
            raise Failure(FX_FAILURE, "invalid handle")
        return h

    def new_handle(self, fd: int, is_dir: bool) -> bytes:
        if len(self.handles) >= MAX_HANDLES:
            os.close(fd)
            raise Failure(FX_FAILURE, "too many open handles")
        hid = self.next_handle
        self.next_handle = (self.next_handle % 0xFFFFFFFF) + 1
        self.handles[hid] = Handle(fd, is_dir)
        return hid.to_bytes(4, "big")

    def lstat(self, path: bytes) -> os.stat_result:
        if realpath(path) == b"/":
            return os.fstat(self.root)
        pfd, name = self.parent_fd(path)
        try:
            return os.stat(name, dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(pfd)

    def apply_attrs(self, a: dict, target, dir_fd: int | None = None, follow=True) -> None:
        """``target``: an open file's fd (FSETSTAT), or a name from ``dir_fd`` (SETSTAT, as
        the resolver's ``attr_target`` gives it; never followed unless ``follow``)."""
        at = {} if isinstance(target, int) else {"dir_fd": dir_fd, "follow_symlinks": follow}
        if "size" in a:
            size = offset(a["size"])
            # only regular files: opening a FIFO for writing would wait for a reader forever
            if not stat.S_ISREG(os.stat(target, **at).st_mode):
                raise Failure(FX_PERMISSION_DENIED, "not a regular file")
            if isinstance(target, int):
                os.ftruncate(target, size)
            else:
                flags = os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
                wfd = os.open(target, flags | (0 if follow else os.O_NOFOLLOW), dir_fd=dir_fd)
                try:
                    if not stat.S_ISREG(os.fstat(wfd).st_mode):  # swapped meanwhile
                        raise Failure(FX_PERMISSION_DENIED, "not a regular file")
                    os.ftruncate(wfd, size)
                finally:
                    os.close(wfd)
        if "perm" in a:
            os.chmod(target, a["perm"] & MODE_MASK, **at)
        # "uid"/"gid" (ATTR_UIDGID) are ignored on purpose: the remote never picks owners
        if "atime" in a:
            os.utime(target, (a["atime"], a["mtime"]), **at)

    # ---- requests --------------------------------------------------------------------------
    def skip_noise(self) -> None:
        """Drop what the remote user's shell start-up files printed before sshfs started:
        everything up to sshfs's INIT (which carries no extensions)."""
        while True:
            i = self.inbuf.find(INIT_PACKET)
            if i >= 0:
                del self.inbuf[:i]
                return
            if len(self.inbuf) > MAX_NOISE:
                raise Failure(FX_BAD_MESSAGE, "no SFTP INIT in the first 64 KiB")
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                raise Failure(FX_BAD_MESSAGE, "stream ended before SFTP INIT")
            self.inbuf += chunk

    def serve(self, skip_noise: bool = False) -> None:
        if skip_noise:
            self.skip_noise()
        pkt = self.read_packet()
        if pkt is None:
            return
        kind = pkt[0]
        pkt.release()
        if kind != INIT:
            raise Failure(FX_BAD_MESSAGE, "expected SSH_FXP_INIT")
        extensions = (s(k) + s(v) for k, v in EXTENSIONS.items())
        self.send(bytes([VERSION]), struct.pack(">I", 3), *extensions)
        while True:
            pkt = self.read_packet()
            if pkt is None:
                return
            r = Reader(pkt)
            kind = pkt[0]
            r.pos = 1
            rid = r.u32()
            try:
                if self.read_only and kind in WRITE_REQUESTS:
                    raise Failure(FX_PERMISSION_DENIED, "read-only share")
                self.dispatch(kind, rid, r)
            except Failure as e:
                self.status(rid, e.code, e.message)
            except OSError as e:
                self.status(rid, _ERRNO_STATUS.get(e.errno, FX_FAILURE), os.strerror(e.errno or 0))
            except (ValueError, OverflowError) as e:
                # a value the OS cannot take (a NUL somewhere, a number too large): a bad
                # request, never the end of the server
                self.status(rid, FX_BAD_MESSAGE, str(e)[:200])
            finally:
                pkt.release()

    def dispatch(self, kind: int, rid: int, r: Reader) -> None:
        if kind == READ:
            h = self.handle(r)
            where, length = offset(r.u64()), r.u32()
            data = os.pread(h.fd, min(length, MAX_READ), where)
            if not data:
                raise Failure(FX_EOF, "end of file")
            self.send(struct.pack(">BII", DATA, rid, len(data)), data)
        elif kind == WRITE:
            h = self.handle(r)
            where = offset(r.u64())
            data = r.view()
            while data:
                n = os.pwrite(h.fd, data, where)
                data, where = data[n:], where + n
            self.status(rid, FX_OK)
        elif kind == OPEN:
            path, pflags, a = r.string(), r.u32(), r.attrs()
            self.send_handle(rid, self.open_file(path, pflags, a))
        elif kind == CLOSE:
            raw = r.string()
            h = self.handles.pop(int.from_bytes(raw, "big"), None) if len(raw) == 4 else None
            if h is None:
                raise Failure(FX_FAILURE, "invalid handle")
            os.close(h.fd)
            self.status(rid, FX_OK)
        elif kind in (LSTAT, STAT):
            path = r.string()
            st = self.lstat(path) if kind == LSTAT else self.paths.stat(path)
            self.send(struct.pack(">BI", ATTRS, rid), encode_attrs(st))
        elif kind == FSTAT:
            self.send(struct.pack(">BI", ATTRS, rid), encode_attrs(os.fstat(self.handle(r).fd)))
        elif kind == SETSTAT:
            path, a = r.string(), r.attrs()
            with self.paths.attr_target(path) as (name, dir_fd, follow):
                self.apply_attrs(a, name, dir_fd, follow)
            self.status(rid, FX_OK)
        elif kind == FSETSTAT:
            h = self.handle(r)
            self.apply_attrs(r.attrs(), h.fd)
            self.status(rid, FX_OK)
        elif kind == OPENDIR:
            fd = self.open_path(r.string(), os.O_RDONLY | os.O_DIRECTORY)
            self.send_handle(rid, self.new_handle(fd, True))
        elif kind == READDIR:
            self.readdir(rid, self.handle(r))
        elif kind == REMOVE:
            self.at(r.string(), lambda name, pfd: os.unlink(name, dir_fd=pfd))
            self.status(rid, FX_OK)
        elif kind == MKDIR:
            path, a = r.string(), r.attrs()
            mode = a.get("perm", 0o777) & MODE_MASK
            self.at(path, lambda name, pfd: os.mkdir(name, mode, dir_fd=pfd))
            self.status(rid, FX_OK)
        elif kind == RMDIR:
            self.at(r.string(), lambda name, pfd: os.rmdir(name, dir_fd=pfd))
            self.status(rid, FX_OK)
        elif kind == REALPATH:
            # lexical, as OpenSSH answers it: the path need not exist; no attributes
            path = realpath(r.string())
            self.send(struct.pack(">BII", NAME, rid, 1), s(path), s(path), struct.pack(">I", 0))
        elif kind == RENAME:
            self.rename(r.string(), r.string(), replace=False)
            self.status(rid, FX_OK)
        elif kind == READLINK:
            target = self.at(r.string(), lambda name, pfd: os.readlink(name, dir_fd=pfd))
            self.send(struct.pack(">BII", NAME, rid, 1), s(target), s(target), struct.pack(">I", 0))
        elif kind == SYMLINK:
            # OpenSSH's (and so sshfs's) order: target first, then the link's path.  The
            # target is only text; following it later is confined like any other path.
            target, link = r.string(), r.string()
            if b"\0" in target:
                raise Failure(FX_BAD_MESSAGE, "NUL in symlink target")
            self.at(link, lambda name, pfd: os.symlink(target, name, dir_fd=pfd))
            self.status(rid, FX_OK)
        elif kind == EXTENDED:
            self.extended(rid, r.string(), r)
        else:
            raise Failure(FX_OP_UNSUPPORTED, f"request type {kind} is not supported")

    def send_handle(self, rid: int, handle: bytes) -> None:
        self.send(struct.pack(">BI", HANDLE, rid), s(handle))

    def at(self, path: bytes, op):
        pfd, name = self.parent_fd(path)
        try:
            return op(name, pfd)
        finally:
            os.close(pfd)

    def open_file(self, path: bytes, pflags: int, a: dict) -> bytes:
        if self.read_only and pflags & WRITE_PFLAGS:
            raise Failure(FX_PERMISSION_DENIED, "read-only share")
        acc = pflags & (PF_READ | PF_WRITE)
        flags = {PF_READ: os.O_RDONLY, PF_WRITE: os.O_WRONLY}.get(acc, os.O_RDWR)
        if pflags & PF_APPEND:
            flags |= os.O_APPEND
        if pflags & PF_CREAT:
            flags |= os.O_CREAT
        if pflags & PF_TRUNC:
            flags |= os.O_TRUNC
        if pflags & PF_EXCL:
            flags |= os.O_EXCL
        # O_NONBLOCK: a FIFO in the share must not hang the whole mount; refused below
        fd = self.open_path(
            path, flags | os.O_NOCTTY | os.O_NONBLOCK, a.get("perm", 0o666) & MODE_MASK
        )
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise Failure(FX_PERMISSION_DENIED, "not a regular file")
        os.set_blocking(fd, True)
        return self.new_handle(fd, False)

    def readdir(self, rid: int, h: Handle) -> None:
        if not h.is_dir:
            raise Failure(FX_FAILURE, "not a directory handle")
        if h.entries is None:
            names = [b".", b"..", *sorted(os.fsencode(n) for n in os.listdir(h.fd))]
            h.entries = iter(names)
        out = []
        for name in h.entries:
            try:
                if name == b".":
                    st = os.fstat(h.fd)
                elif name == b"..":
                    st = os.stat(b"..", dir_fd=h.fd) if not self._is_root(h.fd) else os.fstat(h.fd)
                else:
                    st = os.stat(name, dir_fd=h.fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed since the listing
            out.append(s(name) + s(longname(name, st)) + encode_attrs(st))
            if len(out) >= READDIR_BATCH:
                break
        if not out:
            raise Failure(FX_EOF, "end of directory")
        self.send(struct.pack(">BII", NAME, rid, len(out)), *out)

    def _is_root(self, fd: int) -> bool:
        a, b = os.fstat(fd), os.fstat(self.root)
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    def rename(self, old: bytes, new: bytes, *, replace: bool) -> None:
        opfd, oname = self.parent_fd(old)
        try:
            npfd, nname = self.parent_fd(new)
            try:
                if not replace:
                    try:
                        os.stat(nname, dir_fd=npfd, follow_symlinks=False)
                    except FileNotFoundError:
                        pass
                    else:
                        raise Failure(FX_FAILURE, "target exists")
                os.rename(oname, nname, src_dir_fd=opfd, dst_dir_fd=npfd)
            finally:
                os.close(npfd)
        finally:
            os.close(opfd)

    def extended(self, rid: int, name: bytes, r: Reader) -> None:
        if self.read_only and name in WRITE_EXTENSIONS:
            raise Failure(FX_PERMISSION_DENIED, "read-only share")
        if name == b"posix-rename@openssh.com":
            self.rename(r.string(), r.string(), replace=True)
            self.status(rid, FX_OK)
        elif name == b"hardlink@openssh.com":
            old, new = r.string(), r.string()
            opfd, oname = self.parent_fd(old)
            try:
                npfd, nname = self.parent_fd(new)
                try:
                    os.link(oname, nname, src_dir_fd=opfd, dst_dir_fd=npfd, follow_symlinks=False)
                finally:
                    os.close(npfd)
            finally:
                os.close(opfd)
            self.status(rid, FX_OK)
        elif name == b"fsync@openssh.com":
            os.fsync(self.handle(r).fd)
            self.status(rid, FX_OK)
        elif name == b"statvfs@openssh.com":
            v = self.paths.statvfs(r.string())
            self.send(
                struct.pack(
                    ">BI11Q",
                    EXTENDED_REPLY,
                    rid,
                    v.f_bsize,
                    v.f_frsize,
                    v.f_blocks,
                    v.f_bfree,
                    v.f_bavail,
                    v.f_files,
                    v.f_ffree,
                    v.f_favail,
                    v.f_fsid & 0xFFFFFFFFFFFFFFFF,
                    v.f_flag | (ST_RDONLY if self.read_only else 0),
                    v.f_namemax,
                )
            )
        else:
            raise Failure(FX_OP_UNSUPPORTED, "extension not supported")


PR_SET_PDEATHSIG = 1
PARENT_POLL = 1.0


@functools.cache
def _libc():
    # only ever loaded on Linux (CDLL(None) fails on Windows)
    return ctypes.CDLL(None, use_errno=True)


def tie_to_parent(parent: int) -> None:
    """End when ``parent`` (the Jupyter server) does, even by kill -9: a share must never be
    served by nobody's process.  Linux: the kernel signals us (PR_SET_PDEATHSIG);
    elsewhere, or should prctl fail, a thread watches our parent pid."""
    tied = False
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            tied = _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    if os.getppid() != parent:  # it died before we could ask (or we were reparented)
        os._exit(1)
    if not tied:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(PARENT_POLL)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()


USAGE = "usage: python -m sshpyk.sftp_server [--skip-noise] [--read-only] [--parent PID] ROOT\n"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    flags = {"--skip-noise": False, "--read-only": False}
    parent = None
    rest = []
    while args:
        arg = args.pop(0)
        if arg == "--":
            rest += args
            break
        if arg in flags:
            flags[arg] = True
        elif arg == "--parent" and args and args[0].isdigit():
            parent = int(args.pop(0))
        else:
            rest.append(arg)
    if len(rest) != 1:
        sys.stderr.write(USAGE)
        return 2
    if no_openat2.requested():  # a test switch (see no_openat2): before anything else runs
        try:
            no_openat2.deny()
        except OSError as e:
            sys.stderr.write(f"sshpyk sftp: cannot make openat2 unavailable: {e}\n")
            return 1
    if parent is not None:
        tie_to_parent(parent)
    root = rest[0]
    try:
        server = Server(root, read_only=flags["--read-only"])
    except OSError as e:
        sys.stderr.write(f"sshpyk sftp: cannot serve {root}: {e}\n")
        return 1
    sys.stderr.write(f"{CONFINED_BY}{server.paths.name}\n")
    try:
        server.serve(flags["--skip-noise"])
        server.flush()
    except Failure as e:
        # not SFTP, or a broken stream: stop serving, never guess
        sys.stderr.write(f"sshpyk sftp: {e.message}\n")
        return 1
    except BrokenPipeError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
