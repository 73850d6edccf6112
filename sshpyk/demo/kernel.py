"""The demo's SSH kernel: a kernelspec for this very Python environment, reached through the
demo sshd; registered with the sandbox and deleted with it."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ..errors import KernelSpecError
from ..kernelspecs import delete, write
from .sandbox import DemoSandbox, load_sandbox, start_sandbox, stop_sandbox

DEMO_KERNEL = "ssh-demo"
DEMO_DISPLAY = "Python (SSH demo: localhost)"


def demo_kernelspec(sandbox: DemoSandbox) -> dict[str, Any]:
    """The demo kernel's fields (the kernelspec schema's): the sandbox's alias and client
    config, and the current environment's python as the "remote" one."""
    return {
        "kernel_name": DEMO_KERNEL,
        "display_name": DEMO_DISPLAY,
        "language": "python",
        "ssh_host_alias": sandbox.alias,
        "ssh_config": str(sandbox.ssh_config),
        "remote_python_prefix": sandbox.remote_python_prefix,
        "remote_kernel_name": "python3",
    }


def start_demo(root: Path | None = None) -> DemoSandbox:
    """Start (or reuse) the sandbox and (re)write the demo kernel for it."""
    sandbox = start_sandbox(root)
    write(demo_kernelspec(sandbox), replace=True)
    return sandbox


def stop_demo(root: Path | None = None) -> tuple[DemoSandbox | None, list[str]]:
    """Delete the demo kernel and stop the sandbox: (the sandbox that was running, if one
    was; what is left over, see ``stop_sandbox``)."""
    sandbox = load_sandbox(root)
    with contextlib.suppress(KernelSpecError):  # already gone
        delete(DEMO_KERNEL)
    return sandbox, stop_sandbox(root)
