"""``ssh_master: user`` (issue #16's reuse mode): the kernel rides on the ControlMaster the
user's own ssh config opens for the host, which the user starts (``ssh -fN ALIAS``, after
whatever login the host wants); sshpyk never connects to the host itself, never ends that
master, and says clearly when it is not there.  Real sshd, real ipykernel."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import run_code, start

from sshpyk.control_dir import control_dir
from sshpyk.errors import SSHConnectError
from sshpyk.transport import Target


@pytest.fixture
def users_config(test_hosts, tmp_path):
    """A config of the user's: a Host block with its own ControlMaster/ControlPath, then
    the test config's defaults (key, pinned known_hosts)."""
    cfg = tmp_path / "ssh_config"
    sockets = Path(tempfile.mkdtemp(prefix="spk-own-"))  # short: a socket path is < 108 bytes
    remote = test_hosts["remote"]
    cfg.write_text(
        f"Host own-remote\n  HostName {remote.address}\n  Port {remote.port}\n"
        f"  ControlMaster auto\n  ControlPath {sockets}/cm-%C\n  ControlPersist no\n\n"
        + test_hosts.ssh_config.read_text()
    )
    cfg.chmod(0o600)
    yield cfg
    subprocess.run(["ssh", "-F", str(cfg), "-O", "exit", "own-remote"], capture_output=True)
    shutil.rmtree(sockets, ignore_errors=True)


def test_without_the_users_master_a_launch_says_how_to_start_it(
    users_config, specs, managers, jp_asyncio_loop
):
    specs("ssh-own", ssh_host_alias="own-remote", ssh_config=str(users_config), ssh_master="user")
    km = managers("ssh-own")
    with pytest.raises(SSHConnectError) as err:
        jp_asyncio_loop.run_until_complete(km.start_kernel())
    assert "ssh -fN own-remote" in str(err.value) and "ssh_master: user" in str(err.value)
    own = Target("own-remote", config=str(users_config), users_master=True)
    assert not list(control_dir().glob(f"cm-{own.key}*"))  # nothing of sshpyk's was made


def test_a_kernel_rides_on_the_users_master_and_leaves_it_running(
    users_config, specs, managers, jp_asyncio_loop
):
    started = subprocess.run(
        ["ssh", "-F", str(users_config), "-fN", "own-remote"], capture_output=True, timeout=20
    )
    assert started.returncode == 0, started.stderr
    check = ["ssh", "-F", str(users_config), "-O", "check", "own-remote"]
    before = subprocess.run(check, capture_output=True, text=True).stderr
    assert "Master running" in before
    specs("ssh-own", ssh_host_alias="own-remote", ssh_config=str(users_config), ssh_master="user")
    km = managers("ssh-own")
    kc = jp_asyncio_loop.run_until_complete(start(km))
    out, _ = jp_asyncio_loop.run_until_complete(
        run_code(kc, "import socket; print(socket.gethostname())")
    )
    assert out.strip() == "remote"
    own = Target("own-remote", config=str(users_config), users_master=True)
    assert not list(control_dir().glob(f"cm-{own.key}*"))  # no connection of sshpyk's own
    kc.stop_channels()
    jp_asyncio_loop.run_until_complete(km.shutdown_kernel())
    after = subprocess.run(check, capture_output=True, text=True).stderr
    assert after == before  # the same master (same pid) still runs: it is the user's
