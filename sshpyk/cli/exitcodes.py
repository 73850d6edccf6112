"""The CLI's exit status, decided in one place from what a command raised.

0: done.  1 (``EXIT_FAILED``): something failed that the input could not have prevented —
a check, a connection, a host, a bug.  2 (``EXIT_USAGE``): bad input — the command line, a
field's value, a kernelspec that is missing, local or clashes with another — in which case
nothing was run and nothing was written.  The commands raise; only ``main`` turns what
they raise into a status and a message, through ``exit_code`` and ``message``.
"""

from __future__ import annotations

from ..errors import Refused, SSHPykError
from ..model import InvalidField

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """The command line cannot be acted on as given (argparse's complaints included)."""


# First match wins, so a subclass must come before its base (Refused is an SSHPykError).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (UsageError, EXIT_USAGE),
    (InvalidField, EXIT_USAGE),
    # KernelSpecError, KernelSpecNotFound, NotAnSSHKernel, Conflict, KernelSpecConflict
    (Refused, EXIT_USAGE),
    (SSHPykError, EXIT_FAILED),  # the environment: ssh, a host, the demo's sshd
)


def exit_code(exc: BaseException) -> int:
    """The exit status for a command that raised ``exc``: anything unlisted is a failure."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_FAILED


def message(exc: BaseException) -> str:
    """What is printed on stderr for ``exc``: one line, or one per invalid field."""
    if isinstance(exc, InvalidField):
        each = getattr(exc, "errors", None) or [exc]
        return "\n".join(f"sshpyk: invalid {e.field}: {e.message}" for e in each)
    return f"sshpyk: {exc}"
