"""Fixtures shared by every test: real OpenSSH test hosts, fault helpers, a Jupyter server.

The test hosts are built once per session (about 1.5 s) and torn down at the end; see
``tests/harness``.  Set ``SSHPYK_TEST_HOSTS=loopback`` to force the non-root fallback, and
``SSHPYK_TEST_INSTANCE=NAME:N`` (e.g. ``spkb:1``) to run beside another pytest run: its own
namespaces, subnet and state dir.
Set ``SSHPYK_NO_SKIP=1`` (CI does) to turn any skip into a failure, so a test that could
not run on the CI machine can never pass silently.

Tiers, marked here by where a test lives (``-m unit`` and so on select them): ``tests/unit``
(no sshd, no root, no network: seconds), ``tests/integration`` (the test hosts) and
``tests/resilience`` (fault injection: also ``slow``).  A test that asks for the namespace
hosts (``netns_hosts``, ``login_hosts``, ``faults``, ``slurm_hosts``, ``podman_image``) is ``netns``
too.  Nothing
here is costly until a test asks for it: the test hosts are built by the first test that
requests them, the Slurm cluster (``slurm_hosts``) by the first that requests it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from helpers import Server
from jupyter_client.ioloop import AsyncIOLoopKernelManager as AsyncKernelManager

from harness import Faults, HarnessError, TestHosts, containers, down, slurm, up
from sshpyk import registry

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture(scope="session")
def test_hosts() -> TestHosts:
    name, _, index = os.environ.get("SSHPYK_TEST_INSTANCE", "").partition(":")
    try:
        th = up(prefix=name or None, index=int(index or 0))
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


@pytest.fixture(scope="session")
def login_hosts(netns_hosts: TestHosts) -> TestHosts:
    """The namespace hosts with the login hosts ``otp`` (key + one-time code:
    ``login_hosts.otp_code()``) and ``password`` (``login_hosts.password``)."""
    if not netns_hosts.has_login_hosts:
        pytest.fail("the netns test hosts came up without the login hosts (otp, password)")
    return netns_hosts


@pytest.fixture(scope="session")
def slurm_hosts(netns_hosts: TestHosts) -> slurm.SlurmHosts:
    """A real Slurm cluster on the namespace hosts, built by the first test that asks for it:
    the login host ``hpc`` (``ssh -F slurm_hosts.ssh_config hpc``, ``$SLURM_CONF`` set) and
    the compute host ``node1`` (reachable only from hpc, ``$HOME`` shared); see slurm.py."""
    try:
        sh = slurm.up(netns_hosts)
    except HarnessError as e:
        pytest.fail(f"could not build the Slurm test hosts: {e}")
    yield sh
    left = slurm.down(netns_hosts.state)
    assert not left, f"Slurm test host teardown left {left}"


@pytest.fixture(scope="session")
def podman_image(netns_hosts: TestHosts) -> str:
    """Rootless podman on ``remote`` with the test image (``containers.IMAGE``: the host's
    python and test environment, and ``/etc/sshpyk-test-image``), imported by the first
    test that asks for it (about 8 s); see containers.py."""
    if not containers.available():
        pytest.fail("podman is not installed (./dev and .ci/run install it)")
    try:
        return containers.ensure_image(netns_hosts)
    except RuntimeError as e:
        pytest.fail(f"could not make the test image: {e}")


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


TESTS = Path(__file__).resolve().parent
TIERS = {"unit": ("unit",), "integration": ("integration",), "resilience": ("resilience", "slow")}
NETNS_FIXTURES = {"netns_hosts", "login_hosts", "faults", "slurm_hosts", "podman_image"}


def tier_of(path: Path) -> str:
    """``unit``, ``integration`` or ``resilience``: the directory under ``tests/`` a test
    lives in (``tests/unit/test_layout.py`` sees that every test module lives in one)."""
    try:
        parts = path.resolve().relative_to(TESTS).parts
    except ValueError:
        return "integration"
    if len(parts) > 1 and parts[0] in TIERS:
        return parts[0]
    return "integration"


def pytest_collection_modifyitems(config, items):
    for item in items:
        for name in TIERS[tier_of(Path(item.fspath))]:
            item.add_marker(name)
        if NETNS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("netns")


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


@pytest.fixture(params=["forward", "relay"])
def channels(request) -> str:
    """The channel path (kernelspec ``channels``) of a test that runs on both paths: its
    ``specs`` (and ``server_env``'s) are written for it; test ids say which path."""
    return request.param


@pytest.fixture
def specs(request, tmp_path, monkeypatch, test_hosts):
    """Write SSH kernelspecs into a private JUPYTER_PATH: ``specs(name, **config)``.  A test
    that asks for ``channels`` gets that path in every spec unless one names its own."""
    root = tmp_path / "jupyter"
    monkeypatch.setenv("JUPYTER_PATH", str(root))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    path = request.getfixturevalue("channels") if "channels" in request.fixturenames else None

    def make(name="ssh-remote", interrupt_mode="message", **config):
        cfg = {
            "ssh_host_alias": "remote",
            "ssh_config": str(test_hosts.ssh_config),
            "remote_python_prefix": test_hosts.remote_python_prefix,
            "remote_kernel_name": "python3",
            "launch_timeout": 20,
            "shutdown_timeout": 4,
            "channels": path,
            **config,
        }
        cfg = {k: v for k, v in cfg.items() if v is not None}
        d = root / "kernels" / name
        d.mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [],
            "display_name": f"SSH {name}",
            "language": "python",
            "interrupt_mode": interrupt_mode,
            "metadata": {
                "kernel_provisioner": {"provisioner_name": "sshpyk-provisioner", "config": cfg}
            },
        }
        (d / "kernel.json").write_text(json.dumps(spec))
        return name

    return make


@pytest.fixture
def managers(jp_asyncio_loop):
    """Kernel managers as the Jupyter server makes them (with the auto-restarter); whatever
    is still running is shut down after the test."""
    made: list[AsyncKernelManager] = []

    def make(name: str, **kw) -> AsyncKernelManager:
        km = AsyncKernelManager(kernel_name=name, **kw)
        made.append(km)
        return km

    yield make
    for km in made:
        if km.has_kernel:
            jp_asyncio_loop.run_until_complete(km.shutdown_kernel(now=True))


@pytest.fixture
def server_env(tmp_path, specs, netns_hosts):
    """``server_env()`` starts a real Jupyter server with sshpyk in its own process (kill -9
    works on it) sharing the test's kernelspecs and runtime dir; all are stopped after."""
    specs("ssh-persist", lease_timeout=600)
    specs("ssh-short-lease", lease_timeout=10)
    env = {
        **os.environ,
        "JUPYTER_PATH": os.environ["JUPYTER_PATH"],
        "JUPYTER_RUNTIME_DIR": os.environ["JUPYTER_RUNTIME_DIR"],
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
    }
    servers: list[Server] = []

    def make() -> Server:
        s = Server(tmp_path, env)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
    # whatever a failed test left on the host
    records, _ = registry.all_records()
    for rec in records:
        netns_hosts.ssh("remote", f"kill -9 -- -{int(rec.remote['pgid'])} 2>/dev/null; true")
        registry.remove(rec.kernel_id)


# ---- fixtures several test modules use (test modules never import each other) ---------------


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private Jupyter data dir and path: the user's kernels are never touched."""
    data = tmp_path / "data"
    e = {
        **os.environ,
        "JUPYTER_DATA_DIR": str(data),
        "JUPYTER_PATH": str(data),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
        "HOME_MARKER": str(tmp_path),
    }
    e.pop("JUPYTER_CONFIG_DIR", None)
    for k, v in e.items():
        if k.startswith("JUPYTER_"):
            monkeypatch.setenv(k, v)
    return e


@pytest.fixture
def mountpoint(netns_hosts):
    """A fresh remote mount point name, removed afterwards."""
    name = f"mnt-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    yield name
    netns_hosts.ssh("remote", f"fusermount3 -u -z ~/{name} 2>/dev/null; rm -rf ~/{name}")
