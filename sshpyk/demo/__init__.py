"""``sshpyk demo``: a private, loopback-only sshd and an SSH kernel through it, so sshpyk
can be tried without a server.

- ``sandbox``: the sshd (start, reuse, stop with every process of its sessions);
- ``config``: the text of its sshd_config and of the client ssh_config;
- ``files``: its private directory, files and keys; ``processes``: finding and ending its
  processes by pid;
- ``kernel``: the demo kernelspec, written and deleted with the sandbox;
- ``shell``: how the user's shell runs our programs, for the hints printed.
"""

from __future__ import annotations

from .config import ALIAS
from .files import DemoError
from .kernel import DEMO_DISPLAY, DEMO_KERNEL, demo_kernelspec, start_demo, stop_demo
from .sandbox import DemoSandbox, demo_root, load_sandbox, start_sandbox, stop_sandbox
from .shell import shell_command

__all__ = [
    "ALIAS",
    "DEMO_DISPLAY",
    "DEMO_KERNEL",
    "DemoError",
    "DemoSandbox",
    "demo_kernelspec",
    "demo_root",
    "load_sandbox",
    "shell_command",
    "start_demo",
    "start_sandbox",
    "stop_demo",
    "stop_sandbox",
]
