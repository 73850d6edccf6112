"""The unit tier: pure logic, with fakes where the code would reach out.

No test here may use the test hosts: asking for one of their fixtures is a collection
error, so a slow or root-only test cannot slip into this tier.  A connection from the test
process to anything but loopback fails the test (this tier has no network).  Every test
gets private Jupyter dirs (the registry writes into the runtime dir), so nothing here
touches the user's own ones.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent

# fixtures of tests/conftest.py that build or use the SSH test hosts
HOST_FIXTURES = {"test_hosts", "netns_hosts", "faults", "specs", "managers"}


def pytest_collection_modifyitems(config, items):
    # a conftest's hook sees the items of the whole session: only this tier's are checked
    for item in items:
        if UNIT not in Path(item.fspath).resolve().parents:
            continue
        used = HOST_FIXTURES & set(getattr(item, "fixturenames", ()))
        if used:
            raise pytest.UsageError(
                f"{item.nodeid} uses {', '.join(sorted(used))}: the unit tier runs without "
                "the test hosts (put it in tests/integration)"
            )


@pytest.fixture(autouse=True)
def jupyter_dirs(tmp_path, monkeypatch):
    """Private JUPYTER_* dirs for the test; returns the runtime dir."""
    runtime = tmp_path / "jupyter-runtime"
    for var, sub in [
        ("JUPYTER_RUNTIME_DIR", runtime),
        ("JUPYTER_PATH", tmp_path / "jupyter-path"),
        ("JUPYTER_DATA_DIR", tmp_path / "jupyter-data"),
        ("JUPYTER_CONFIG_DIR", tmp_path / "jupyter-config"),
    ]:
        monkeypatch.setenv(var, str(sub))
    return runtime


def _loopback_only(connect, attempts: list):
    def guarded(sock, address, *args):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                attempts.append(address)
                raise AssertionError(f"the unit tier has no network: connect to {address!r}")
        return connect(sock, address, *args)

    return guarded


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Connections from this process to anything but loopback fail the test, also when the
    code under test swallows the error."""
    attempts: list = []
    for name in ("connect", "connect_ex"):
        real = getattr(socket.socket, name)
        monkeypatch.setattr(socket.socket, name, _loopback_only(real, attempts))
    yield
    assert not attempts, f"the unit tier has no network: connected to {attempts}"
