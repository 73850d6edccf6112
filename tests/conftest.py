"""Fixtures shared by every test: real OpenSSH test hosts, fault helpers, a Jupyter server.

The test hosts are built once per session (about 1.5 s) and torn down at the end; see
``tests/harness``.  Set ``SSHPYK_TEST_HOSTS=loopback`` to force the non-root fallback.
Set ``SSHPYK_NO_SKIP=1`` (CI does) to turn any skip into a failure, so a test that could
not run on the CI machine can never pass silently.
"""

from __future__ import annotations

import os

import pytest

from harness import Faults, HarnessError, TestHosts, down, up

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture(scope="session")
def test_hosts() -> TestHosts:
    try:
        th = up()
    except HarnessError as e:
        pytest.fail(f"could not build the SSH test hosts: {e}")
    yield th
    left = down(th.state)
    assert not left, f"test host teardown left {left}"


@pytest.fixture(scope="session")
def netns_hosts(test_hosts: TestHosts) -> TestHosts:
    if test_hosts.mode != "netns":
        pytest.skip(
            "needs the network-namespace test hosts (run as root without "
            "SSHPYK_TEST_HOSTS=loopback)"
        )
    return test_hosts


@pytest.fixture
def faults(netns_hosts: TestHosts):
    f = Faults(netns_hosts)
    yield f
    f.clear()


@pytest.fixture
def jp_server_config(jp_server_config):
    return {
        "ServerApp": {
            "jpserver_extensions": {"sshpyk": True},
            # every route must demand auth even where the server would allow anonymous use
            "allow_unauthenticated_access": False,
        }
    }


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("SSHPYK_NO_SKIP") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped while SSHPYK_NO_SKIP=1: {reason}"
