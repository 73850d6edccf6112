"""``sshpyk login ALIAS`` and ``sshpyk logout ALIAS``: a host that wants a password, a
one-time code or a host-key decision asks them on this terminal, once; the master this makes
is the one every kernel, mount and check on the host uses (a Jupyter server's too: masters
are the user's, in the control dir), until it ends or ``logout`` ends it."""

from __future__ import annotations

import asyncio
import sys

from ..model import check_alias, validate
from ..transport import SHARDS, Master, Target
from .exitcodes import EXIT_OK, UsageError

# how long ssh may wait for the user at the terminal (sshd's LoginGraceTime ends it sooner)
LOGIN_TIMEOUT = 600.0


def _target(args) -> Target:
    check_alias("host_alias", args.host_alias)
    if args.ssh_config:
        validate({"ssh_config": args.ssh_config}, only=("ssh_config",))
    return Target.from_config(
        {"ssh_host_alias": args.host_alias, "ssh": args.ssh, "ssh_config": args.ssh_config}
    )


def cmd_login(args) -> int:
    target = _target(args)
    if not sys.stdin.isatty():
        raise UsageError("sshpyk login asks on a terminal: run it in one")
    master = Master.for_target(target)

    async def login() -> bool:
        if await master.is_alive():
            return False
        await master.login(LOGIN_TIMEOUT)  # ssh asks on this terminal
        return True

    made = asyncio.run(login())
    word = "logged in to" if made else "already logged in to"
    print(f"{word} {target.alias}: its kernels, mounts and checks use this login until it ends")
    return EXIT_OK


def cmd_logout(args) -> int:
    target = _target(args)

    async def logout() -> int:
        ended = 0
        for shard in range(SHARDS):
            master = Master.for_target(target, shard)
            if await master.is_alive():
                await master.exit()
                ended += 1
        return ended

    ended = asyncio.run(logout())
    if ended:
        print(
            f"logged out of {target.alias}: kernels there keep running, and reconnect at the "
            "next login"
        )
    else:
        print(f"no login to {target.alias} was open")
    return EXIT_OK
