"""Local files the user names that ssh will obey: checked before anything reads or runs them.

An ssh config is a program in disguise (``ProxyCommand``, ``Match exec``,
``KnownHostsCommand``, ``LocalCommand``), so sshpyk only hands ssh a config that the user
(or root) owns and nobody else can change, and reads one only when it is a small regular
file: a FIFO, a terminal or ``/dev/zero`` would pin a thread or fill memory.  ``os.stat``
answers at once for every kind of file, and the read re-checks the file it actually opened
(``fstat``), so a file swapped in between cannot get past.
"""

from __future__ import annotations

import os
import stat

from .errors import InvalidField

MAX_CONFIG_BYTES = 1024 * 1024  # real ssh configs are a few KiB; Include trees stay far below


def _problem(st: os.stat_result) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid not in (os.getuid(), 0):
        return "is owned by another user (ssh would run what it says as you)"
    if st.st_mode & 0o022:
        return "is writable by group or others (chmod go-w it)"
    if st.st_size > MAX_CONFIG_BYTES:
        return f"is larger than {MAX_CONFIG_BYTES // 1024} KiB"
    return None


def check_ssh_config(name: str, path: str) -> None:
    """Refuse an ssh config file that is not a small regular file owned by us or root and
    writable by nobody else (the target of a symlink is what counts, as for ssh)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InvalidField(name, f"{path} does not exist") from None
    except OSError as e:
        raise InvalidField(name, f"{path} cannot be read ({e.strerror})") from None
    problem = _problem(st)
    if problem:
        raise InvalidField(name, f"{path} {problem}")


def read_ssh_config(path: str) -> str:
    """The text of a checked ssh config file; ``InvalidField`` if it is not one.

    O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InvalidField("ssh_config", f"{path} cannot be read ({e.strerror})") from None
    try:
        problem = _problem(os.fstat(fd))
        if problem:
            raise InvalidField("ssh_config", f"{path} {problem}")
        data = b""
        while len(data) <= MAX_CONFIG_BYTES:
            chunk = os.read(fd, MAX_CONFIG_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data[:MAX_CONFIG_BYTES].decode(errors="replace")
