"""What the local system must give sshpyk, checked where sshpyk starts (the CLI, the server
extension, a kernel's launch).

- **Native Windows is refused** with one message that names the way: sshpyk rides on
  OpenSSH's ControlMaster (every kernel, forward and mount shares the host's connection, and
  any sshpyk process of the user finds it by its unix socket), which Windows' OpenSSH lacks.
  JupyterLab inside WSL2 is a Linux system with all of it.  Nothing POSIX-only is imported
  at module level on the way to this check (``fcntl``, ``pwd`` are imported where used), so
  the refusal is what a Windows user sees, not an ImportError.
- **Open files**: macOS starts processes with a soft limit of 256 open files.  Each kernel
  costs the Jupyter server a few dozen fds (its ZeroMQ sockets and their clients' and, on
  the monitor session, the local ssh's pipes: README "Local platforms"), so the soft limit is
  raised toward the hard one at start, best effort (jupyter_server raises it to 4096 itself,
  ``c.ServerApp.min_open_files_limit``; the CLI has no such knob), with a warning when it
  stays low.
"""

from __future__ import annotations

import logging
import sys

from .errors import SSHPykError

log = logging.getLogger("sshpyk")

WINDOWS_MESSAGE = (
    "native Windows is not supported: sshpyk needs OpenSSH's ControlMaster (shared "
    "connections over unix sockets), which Windows' OpenSSH lacks. Run JupyterLab inside "
    "WSL2 (a Linux distribution on Windows: `wsl --install`, then `pip install sshpyk` and "
    "`jupyter lab` there), with your ssh config and keys in WSL's ~/.ssh"
)
# Most open files one kernel costs the Jupyter server's process, with one client (an open
# notebook): tests/integration/test_local_fds.py holds us to it (measured on Linux: 28 with
# channels: forward, 49 with relay; macOS's ZeroMQ uses two fds where Linux has an eventfd)
FDS_PER_KERNEL = 64
# open files wanted: a few dozen per kernel (README "Local platforms") for a few hundred
# kernels, well under what macOS allows a process (kern.maxfilesperproc, OPEN_MAX 10240)
WANTED_OPEN_FILES = 8192


class UnsupportedPlatform(SSHPykError):
    kind = "unsupported_platform"


def check_platform(platform: str | None = None) -> None:
    """Raise ``UnsupportedPlatform`` on native Windows (``platform``: ``sys.platform``)."""
    if (platform or sys.platform) == "win32":
        raise UnsupportedPlatform(WINDOWS_MESSAGE)


def open_files_target(soft: int, hard: int, infinity: int, wanted: int = WANTED_OPEN_FILES) -> int:
    """The soft RLIMIT_NOFILE to ask for: ``wanted``, never above the hard limit, never
    below what we have (a limit is only ever raised here)."""
    ceiling = wanted if hard == infinity else min(hard, wanted)
    return soft if soft == infinity or soft >= ceiling else ceiling


def raise_open_files_limit(wanted: int = WANTED_OPEN_FILES) -> int | None:
    """Raise this process's soft open-files limit toward ``wanted`` (best effort: a system
    that refuses keeps its limit); returns the soft limit now, None where there is none."""
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return None
    target = open_files_target(soft, hard, resource.RLIM_INFINITY, wanted)
    while target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (OSError, ValueError):
            target //= 2  # macOS refuses more than kern.maxfilesperproc: ask for less
    if soft != resource.RLIM_INFINITY and soft < 1024:
        log.warning(
            "sshpyk: only %d open files allowed (ulimit -n): about %d kernels fit at once",
            soft,
            soft // FDS_PER_KERNEL,
        )
    return soft
