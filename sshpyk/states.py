"""The states sshpyk reports, each vocabulary written once.

The REST API, its OpenAPI document (``server/openapi.py`` takes the values from here), the
TypeScript types (checked against that document by a jest test) and the words a user reads
all follow these enums.  ``str`` enums: they serialise to their value in JSON.
"""

from __future__ import annotations

from enum import Enum


class _Str(str, Enum):
    def __str__(self) -> str:
        return self.value


class TunnelState(_Str):
    """A running SSH kernel's link (see ``kernel/watchdog.py`` for the transitions)."""

    LAUNCHING = "launching"  # starting or re-attaching; ``step`` says where it is
    CONNECTED = "connected"  # the host answers pings
    RECONNECTING = "reconnecting"  # no answer for a few seconds; the kernel is not dead
    LOST = "lost"  # no answer for longer than ``lost_timeout``; still trying
    # the link ended and the host wants a login (a password, a code) to come back: the
    # kernel lives on its lease; a login (``sshpyk login``, Lab's button) reconnects it
    LOGIN_NEEDED = "login_needed"
    DEAD = "dead"  # the kernel exited, or never started


class MountState(_Str):
    """One SSHFS mount of a local directory on the remote host."""

    UNMOUNTED = "unmounted"
    MOUNTING = "mounting"
    MOUNTED = "mounted"
    REMOUNTING = "remounting"
    FAILED = "failed"


class CheckStatus(_Str):
    """The verdict of one health check."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


class LoginState(_Str):
    """An interactive login to a host (password, one-time code, host key): what makes the
    host's sshpyk master when the key alone is not enough (``sshpyk/login/``)."""

    CONNECTING = "connecting"  # ssh is at work; no question waits for the user
    PROMPTING = "prompting"  # ssh asks something (``prompt``): the user answers or cancels
    CONNECTED = "connected"  # logged in: the host's master is up, everything uses it
    FAILED = "failed"  # ended without a login (``error`` says why: a wrong code, cancel, ...)


class SlurmJobState(_Str):
    """A Slurm kernel's job, in Slurm's own words (squeue, scontrol, sacct); ``OTHER`` for
    a state this version of sshpyk does not know."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    COMPLETING = "COMPLETING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    REQUEUED = "REQUEUED"
    RESIZING = "RESIZING"
    REVOKED = "REVOKED"
    SPECIAL_EXIT = "SPECIAL_EXIT"
    STOPPED = "STOPPED"
    CONFIGURING = "CONFIGURING"
    SIGNALING = "SIGNALING"
    STAGE_OUT = "STAGE_OUT"
    OTHER = "OTHER"


def values(enum: type[Enum]) -> list[str]:
    """The enum's values in their order: what the OpenAPI document lists."""
    return [m.value for m in enum]
