"""The kernel in a container (issue #18's ``container``), with real rootless podman on the
test host and an image that is not the host (``podman_image``: harness/containers.py).

sshpyk's launcher and nanny run on the host; only the kernel runs in the image, with the
run dir, the working directory and the mounts bound in (remote/container.py)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from helpers import kernel_with_state, reattached, run_code, sshpyk_cli, start

from harness import containers
from sshpyk import registry
from sshpyk.errors import RemoteLaunchError

# the image's python (the test image holds the test environment at the host's path)
IMAGE_PYTHON = "/opt/sshpyk-remote-env/bin/python"
WHERE = (
    "import os; print(os.path.exists('/etc/sshpyk-test-image'), "
    "os.path.exists('/etc/debian_version'), os.getuid(), os.getcwd(), "
    "os.environ.get('OMP_NUM_THREADS'))"
)


@pytest.fixture(autouse=True)
def nothing_left_in_the_run_dirs(netns_hosts):
    """Whatever a test did, its kernels' run dirs are gone afterwards (as for every kernel)."""
    yield
    deadline = time.monotonic() + 10
    while True:
        left = netns_hosts.ssh("remote", "ls -A ~/.sshpyk/run 2>/dev/null").stdout.split()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert left == [], left


def container(image: str, **more) -> dict:
    return {"runtime": "podman", "image": image, "python": IMAGE_PYTHON, **more}


async def no_container_left(th, within: float = 20.0) -> None:
    """``podman run --rm`` removes its container as it ends, a moment after the kernel."""
    deadline = time.monotonic() + within
    while containers.containers(th):
        assert time.monotonic() < deadline, f"left running: {containers.containers(th)}"
        await asyncio.sleep(0.3)


async def test_the_kernel_runs_in_the_image_where_the_user_works(
    netns_hosts, podman_image, specs, managers, channels
):
    """In the image (its marker file, not the host's files), as the user, in remote_cwd,
    with the kernelspec's env; writes land on the host; interrupt by signal; restart; and
    its shutdown leaves no container."""
    uid = int(netns_hosts.ssh("remote", "id -u").stdout)
    assert netns_hosts.ssh("remote", "mkdir -p ~/ct-work").returncode == 0
    try:
        km = managers(
            specs(
                f"ssh-ct-{channels}",
                interrupt_mode="signal",
                remote_cwd="~/ct-work",
                container=container(podman_image),
            )
        )
        km.kernel_spec.env = {"OMP_NUM_THREADS": "3"}
        kc = await start(km)
        out, _ = await run_code(kc, WHERE)
        home = f"/home/{netns_hosts.user}"
        assert out.split() == ["True", "False", str(uid), f"{home}/ct-work", "3"], out
        out, reply = await run_code(kc, "open('made-inside.txt', 'w').write('hello')")
        assert reply["status"] == "ok"
        assert netns_hosts.ssh("remote", "cat ~/ct-work/made-inside.txt").stdout == "hello"
        # interrupt by signal: through the runtime's client, which passes it on
        kc.execute("import time; time.sleep(60)")
        await asyncio.sleep(1.5)
        t0 = time.monotonic()
        await km.interrupt_kernel()
        reply = await kc.get_shell_msg(timeout=15)
        while reply["msg_type"] != "execute_reply":
            reply = await kc.get_shell_msg(timeout=15)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - t0 < 15
        name = km.provisioner.kernel.remote["container"]["name"]
        assert name in containers.containers(netns_hosts)
        await km.restart_kernel(now=True)
        await kc.wait_for_ready(timeout=30)
        out, _ = await run_code(kc, WHERE)
        assert out.split()[:2] == ["True", "False"], out
        kc.stop_channels()
        await km.shutdown_kernel()
        await no_container_left(netns_hosts)
    finally:
        netns_hosts.ssh("remote", "rm -rf ~/ct-work")


async def test_a_killed_runtime_client_takes_its_container_with_it(
    netns_hosts, podman_image, specs, managers
):
    """podman's container outlives a SIGKILLed `podman run` (conmon holds it): the nanny
    removes it, so an OOM kill or a forced end leaves no kernel running unseen."""
    km = managers(specs("ssh-ct-kill", container=container(podman_image)))
    kc = await start(km)
    remote = km.provisioner.kernel.remote
    name, pid = remote["container"]["name"], remote["pid"]
    assert name in containers.containers(netns_hosts)
    assert netns_hosts.ssh("remote", f"kill -KILL {pid}").returncode == 0
    deadline = time.monotonic() + 20
    while name in containers.containers(netns_hosts):
        assert time.monotonic() < deadline, f"container {name} still there"
        await asyncio.sleep(0.5)
    kc.stop_channels()
    await km.shutdown_kernel(now=True)
    await no_container_left(netns_hosts)


async def test_a_mount_is_bound_into_the_container(
    netns_hosts, podman_image, specs, managers, tmp_path, mountpoint
):
    """A notebook in a mounted local directory: the kernel in the image starts in the
    mounted path and reads the local file."""
    share = tmp_path / "project"
    share.mkdir()
    (share / "data.csv").write_text("a,b\n1,2\n")
    km = managers(
        specs(
            "ssh-ct-mount",
            channels="relay",
            mount_local_on_remote=[{"local_path": str(share), "remote_path": f"~/{mountpoint}"}],
            container=container(podman_image),
        )
    )
    await km.start_kernel(cwd=str(share))
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=30)
    out, reply = await run_code(
        kc,
        "import os; print(os.path.exists('/etc/sshpyk-test-image'), os.getcwd()); "
        "print(open('data.csv').read().splitlines()[1])",
    )
    assert reply["status"] == "ok", reply
    assert out.split() == ["True", f"/home/{netns_hosts.user}/{mountpoint}", "1,2"], out
    kc.stop_channels()
    await km.shutdown_kernel()
    await no_container_left(netns_hosts)


async def test_a_missing_image_fails_the_launch_with_the_runtimes_words(
    netns_hosts, podman_image, specs, managers
):
    # the runtime's options are passed on: no pull attempt (none could reach a registry)
    bad = container("localhost/sshpyk-nosuch:1", options=["--pull=never"])
    km = managers(specs("ssh-ct-noimage", container=bad))
    with pytest.raises(RemoteLaunchError) as e:
        await km.start_kernel()
    text = str(e.value)
    assert "the kernel's container ended during start-up" in text, text
    assert "localhost/sshpyk-nosuch" in text, text
    await no_container_left(netns_hosts)


async def test_a_runtime_the_host_lacks_is_named(netns_hosts, specs, managers):
    km = managers(
        specs("ssh-ct-noruntime", container={"runtime": "apptainer", "image": "~/ml.sif"})
    )
    with pytest.raises(RemoteLaunchError, match="apptainer is not on the host's PATH"):
        await km.start_kernel()


def test_sshpyk_check_runs_the_image(netns_hosts, podman_image, specs):
    good = sshpyk_cli("check", specs("ssh-ct-check", container=container(podman_image)), "--json")
    checks = {c["id"]: c for c in json.loads(good.stdout)["checks"]}
    assert good.returncode == 0, good.stdout
    assert checks["container"]["status"] == "ok", checks["container"]
    assert checks["container"]["value"].startswith(f"podman {podman_image}: ipykernel ")
    assert checks["remote_kernel"]["status"] == "skipped"
    bad = container(podman_image, python="/nowhere/python")
    out = sshpyk_cli("check", specs("ssh-ct-badcheck", container=bad), "--json")
    checks = {c["id"]: c for c in json.loads(out.stdout)["checks"]}
    assert out.returncode == 1 and checks["container"]["status"] == "fail"
    assert "/nowhere/python" in checks["container"]["hint"], checks["container"]


async def test_a_kernel_in_a_container_is_taken_up_after_a_server_kill9(
    netns_hosts, podman_image, specs, server_env
):
    """The container outlives the Jupyter server (its client is the nanny's child on the
    host); a new server attaches to it with its state, then its shutdown removes it."""
    specs("ssh-ct-persist", lease_timeout=600, container=container(podman_image))
    s1 = server_env()
    await s1.ready()
    kid = await kernel_with_state(s1, "ssh-ct-persist", "z = 'survived in the image'")
    name = registry.load(kid).remote["container"]["name"]
    s1.kill9()
    assert name in containers.containers(netns_hosts)
    ps = sshpyk_cli("ps", "--json")
    (listed,) = [e for e in json.loads(ps.stdout)["kernels"] if e["kernel_id"] == kid]
    assert listed["orphan"] and listed["alive"]
    s2 = server_env()
    await s2.ready()
    kc = await reattached(s2, kid)
    out, reply = await run_code(kc, "import os; print(z, os.path.exists('/etc/sshpyk-test-image'))")
    assert reply["status"] == "ok" and out.strip() == "survived in the image True", out
    kc.stop_channels()
    code, _ = await s2.call("DELETE", f"api/kernels/{kid}")
    assert code == 204
    await no_container_left(netns_hosts)
