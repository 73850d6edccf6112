"""The demo sandbox's files: one private 0700 directory of ours, files created there with
O_EXCL|O_NOFOLLOW (never through something planted in our place), ssh keys."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from pathlib import Path

from ..errors import SSHPykError


class DemoError(SSHPykError):
    """The demo sandbox could not be created, started or verified."""

    kind = "demo"


def ensure_private_dir(root: Path, create: bool = True) -> None:
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


def write_private(path: Path, text: str, replace: bool = False) -> None:
    if replace:
        path.unlink(missing_ok=True)
    # O_EXCL|O_NOFOLLOW: never write through something planted in our place
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def keygen(path: Path, comment: str) -> None:
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


def pubkey(private: Path) -> str:
    """``ssh-ed25519 AAAA...`` without the comment."""
    return " ".join(private.with_name(private.name + ".pub").read_text().split()[:2])


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no sshd.log)"
