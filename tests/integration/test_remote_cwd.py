"""Where the remote kernel starts (issue #18): a notebook inside a mounted local directory
starts its kernel in the matching remote directory, so a relative ``open()`` reads the same
file a local kernel would; otherwise in the kernelspec's ``remote_cwd`` (default ``~``)."""

from __future__ import annotations

import pytest
from helpers import run_code, start

from sshpyk.errors import RemoteLaunchError

CWD = "import os; print(os.getcwd())"


async def test_a_notebook_in_a_mounted_directory_reads_its_neighbours(
    netns_hosts, specs, managers, tmp_path, mountpoint
):
    share = tmp_path / "project"
    (share / "analysis").mkdir(parents=True)
    (share / "analysis" / "data.csv").write_text("a,b\n1,2\n")
    spec = specs(
        "ssh-cwd-mount",
        channels="relay",
        mount_local_on_remote=[{"local_path": str(share), "remote_path": f"~/{mountpoint}"}],
    )
    km = managers(spec)
    # jupyter_server passes the notebook's directory as cwd
    await km.start_kernel(cwd=str(share / "analysis"))
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=30)
    out, _ = await run_code(kc, CWD)
    assert out.strip() == f"/home/{netns_hosts.user}/{mountpoint}/analysis"
    out, reply = await run_code(kc, "print(open('data.csv').read().splitlines()[1])")
    assert reply["status"] == "ok" and out.strip() == "1,2"
    # a restart starts in the same place
    await km.restart_kernel(now=True)
    await kc.wait_for_ready(timeout=30)
    out, _ = await run_code(kc, CWD)
    assert out.strip().endswith(f"/{mountpoint}/analysis")
    kc.stop_channels()
    await km.shutdown_kernel()


async def test_elsewhere_the_kernelspecs_remote_cwd_or_home(netns_hosts, specs, managers, tmp_path):
    assert netns_hosts.ssh("remote", "mkdir -p ~/work-cwd").returncode == 0
    try:
        km = managers(specs("ssh-cwd-work", remote_cwd="~/work-cwd"))
        await km.start_kernel(cwd=str(tmp_path))  # not inside any mount
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=30)
        out, _ = await run_code(kc, CWD)
        assert out.strip() == f"/home/{netns_hosts.user}/work-cwd"
        kc.stop_channels()
        await km.shutdown_kernel()
        km = managers(specs("ssh-cwd-home"))
        kc = await start(km)
        out, _ = await run_code(kc, CWD)
        assert out.strip() == f"/home/{netns_hosts.user}"
        kc.stop_channels()
        await km.shutdown_kernel()
    finally:
        netns_hosts.ssh("remote", "rm -rf ~/work-cwd")


async def test_a_missing_remote_cwd_fails_the_launch_in_words(netns_hosts, specs, managers):
    def run_dirs() -> set[str]:
        return set(netns_hosts.ssh("remote", "ls ~/.sshpyk/run 2>/dev/null").stdout.split())

    # the previous test's kernel may still be clearing its own run dir (after its shutdown)
    before = run_dirs()
    km = managers(specs("ssh-cwd-missing", remote_cwd="~/no-such-dir-xyz"))
    with pytest.raises(RemoteLaunchError, match="no-such-dir-xyz is not a directory"):
        await km.start_kernel()
    # nothing of the launch is left on the host
    assert run_dirs() <= before
