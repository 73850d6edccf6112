"""A test switch: make openat2 unavailable to this process, as it is on Linux < 5.6.

The SFTP server's entry point calls ``deny()`` before it serves when ``SSHPYK_SFTP_NO_OPENAT2=1``
is in its environment: the test suite sets it to run the whole SSHFS suite against the walk
(``sshpyk.confine.Walk``) on a kernel that has openat2.  The remote side cannot set it (it only
ever sends SFTP requests on the server's stdin), and it only takes a capability away.

A seccomp filter (classic BPF, installed with prctl after PR_SET_NO_NEW_PRIVS, so it needs no
privilege) answers ENOSYS to openat2 (437) for this process's own architecture (x86_64,
aarch64) and allows every other call.  It holds for the calling thread and every thread or
process started after it, and cannot be lifted.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys

ENV = "SSHPYK_SFTP_NO_OPENAT2"
OPENAT2 = 437
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
NR, ARCH = 0, 4  # offsets in struct seccomp_data


class _Insn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Insn))]


def program(arch: int) -> list[tuple[int, int, int, int]]:
    """(code, jt, jf, k) rows; a jump skips that many rows after its own."""
    return [
        (BPF_LD_W_ABS, 0, 0, ARCH),
        (BPF_JEQ_K, 0, 3, arch),  # another ABI's call: allowed (this one is what we use)
        (BPF_LD_W_ABS, 0, 0, NR),
        (BPF_JEQ_K, 0, 1, OPENAT2),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]


def requested() -> bool:
    return os.environ.get(ENV) == "1"


def deny() -> None:
    """From now on openat2 answers ENOSYS in this process; raises OSError if it cannot."""
    arch = AUDIT_ARCH.get(platform.machine().lower()) if sys.platform == "linux" else None
    if arch is None:
        raise OSError(errno.ENOSYS, f"no seccomp filter for {sys.platform}/{platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    rows = program(arch)
    insns = (_Insn * len(rows))(*(_Insn(*row) for row in rows))
    prog = _Prog(len(rows), insns)
    zero = ctypes.c_ulong(0)
    for args in (
        (PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), zero, zero, zero),
        (PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), zero, zero),
    ):
        if libc.prctl(*args) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl({args[0]}): {os.strerror(err)}")
