"""The sshpyk test harness: real OpenSSH test hosts and network fault helpers.

``python -m harness up|down|status`` (from ``tests/``) drives it by hand; the pytest
fixtures in ``tests/conftest.py`` use it for every integration test.  :class:`Terminal`
runs a program (ssh, the CLI) on a pty for tests that log in interactively.
"""

from .faults import Faults
from .terminal import Terminal
from .topology import HarnessError, Host, TestHosts, down, is_root, up

__all__ = ["Faults", "HarnessError", "Host", "Terminal", "TestHosts", "down", "is_root", "up"]
