"""``sshpyk demo``: start or stop the demo (``sshpyk.demo``) and say what to do next."""

from __future__ import annotations

import sys

from ..demo import DEMO_DISPLAY, DEMO_KERNEL, shell_command, start_demo, stop_demo
from .exitcodes import EXIT_FAILED, EXIT_OK


def cmd_demo(args) -> int:
    if args.stop:
        sandbox, left = stop_demo()
        if left:
            print(f"demo stopped, but left: {', '.join(left)}", file=sys.stderr)
            return EXIT_FAILED
        print(
            "demo stopped: sshd, keys, config and the demo kernel are gone"
            if sandbox
            else "no demo was running"
        )
        return EXIT_OK
    sandbox = start_demo()
    me, lab = shell_command("sshpyk"), shell_command("jupyter") + " lab"
    print(f"""sshpyk demo is running: a private sshd on 127.0.0.1:{sandbox.port} \
(pid {sandbox.sshd_pid}) with its own keys and ssh config in {sandbox.root};
your ~/.ssh is untouched.

Registered the SSH kernel {DEMO_DISPLAY!r} ({DEMO_KERNEL}). Next:
  {lab:<33}# then pick "{DEMO_DISPLAY}" in the launcher
  {me} check {DEMO_KERNEL}
  {me + " demo --stop":<33}# removes all of it""")
    return EXIT_OK
