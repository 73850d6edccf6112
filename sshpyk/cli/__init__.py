"""``sshpyk`` / ``jupyter sshpyk``: manage SSH kernels from the shell.

Exit status: 0 done, 1 something failed (a check, a connection), 2 bad input — in which
case nothing was run and nothing was written (the mapping: ``exitcodes``).

The package: ``parser`` (the command line, options derived from the kernelspec schema),
``specs`` (list/add/edit/delete/check), ``checking`` (many hosts checked at once),
``running`` (ps/reap), ``discover`` (a host's environments), ``login`` (login/logout),
``demo`` (the demo command), ``render`` (what is printed), ``exitcodes`` (exceptions to
exit statuses, in one place).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from ..local_platform import check_platform, raise_open_files_limit
from .demo import cmd_demo
from .discover import cmd_discover
from .exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, exit_code, message
from .login import cmd_login, cmd_logout
from .parser import OPTIONS, build_parser
from .running import cmd_ps, cmd_reap
from .specs import cmd_add, cmd_check, cmd_delete, cmd_edit, cmd_list

__all__ = ["COMMANDS", "EXIT_FAILED", "EXIT_USAGE", "OPTIONS", "UsageError", "main"]

log = logging.getLogger("sshpyk")

# subcommand -> what runs it: (argparse's namespace) -> exit status, or it raises
COMMANDS: dict[str, Callable[..., int]] = {
    "list": cmd_list,
    "add": cmd_add,
    "edit": cmd_edit,
    "delete": cmd_delete,
    "check": cmd_check,
    "ps": cmd_ps,
    "reap": cmd_reap,
    "login": cmd_login,
    "logout": cmd_logout,
    "demo": cmd_demo,
    "discover": cmd_discover,
}


def _setup_logging(verbosity: int) -> None:
    level = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("SSHPYK %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        check_platform()  # native Windows: one message naming WSL2, exit 1
        raise_open_files_limit()  # macOS gives 256; `sshpyk ps` holds one master per host
        args = parser.parse_args(argv)
        _setup_logging(args.verbose)
        if not args.command:
            parser.print_help()
            return EXIT_OK
        return COMMANDS[args.command](args)
    except Exception as e:  # the one place where what a command raised becomes a status
        code = exit_code(e)
        if code != EXIT_USAGE:  # a failure of the environment, not of the input
            log.debug("failed", exc_info=True)
        print(message(e), file=sys.stderr)
        return code
