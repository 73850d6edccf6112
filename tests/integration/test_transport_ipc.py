"""The default transport keeps the kernel's channels to the user's own account on the remote
host (review finding M6): ``ipc``, unix sockets in a 0700 directory, forwarded with
OpenSSH stream-local forwards.  ``tcp`` stays an option; its ports on the remote 127.0.0.1
are open to every other user of that host."""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import time
from importlib.resources import files

import pytest
from helpers import kernel_procs, run_code, start

from sshpyk.errors import SSHPykError
from sshpyk.model import SSHKernelConfig
from sshpyk.remote.protocol import PORT_NAMES

SECRET = "m6-secret-7f3a"

# Run as `nobody` inside the remote host's namespaces: try every endpoint of the kernel as
# another user would: connect to its unix sockets, subscribe to each TCP port it listens on.
SNOOP = r"""
import json, socket, sys, time
import zmq
paths, ports, seconds = json.loads(sys.argv[1])
unix = {}
for p in paths:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(p)
        unix[p] = "connected"
    except OSError as e:
        unix[p] = e.__class__.__name__
    s.close()
ctx = zmq.Context()
subs = []
for ep in [f"tcp://127.0.0.1:{p}" for p in ports] + [f"ipc://{p}" for p in paths]:
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(ep)
    subs.append(sub)
print("ready", flush=True)
poller = zmq.Poller()
for sub in subs:
    poller.register(sub, zmq.POLLIN)
got = []
end = time.monotonic() + seconds
while time.monotonic() < end:
    for sock, _ in poller.poll(100):
        got.append(b"".join(sock.recv_multipart()).decode("utf-8", "replace"))
print(json.dumps({"unix": unix, "received": got}), flush=True)
"""


def _sh(th, script: str) -> str:
    out = th.ssh("remote", script)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _tcp_listeners(th, pid: int) -> list[int]:
    """Ports the process ``pid`` listens on, in the remote host's network namespace."""
    out = subprocess.run(
        ["ip", "netns", "exec", th["remote"].netns, "ss", "-Hltnp"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [int(ln.split()[3].rsplit(":", 1)[1]) for ln in out.splitlines() if f"pid={pid}," in ln]


async def _snoop(th, kc, kernel_pid: int, paths: list[str], ports: list[int]) -> dict:
    """What another user of the remote host gets while the kernel runs code with SECRET."""
    argv = [
        "nsenter", "-t", str(kernel_pid), "-m", "-n",
        "runuser", "-u", "nobody", "--",
        f"{th.remote_python_prefix}/bin/python", "-c", SNOOP, json.dumps([paths, ports, 4]),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        await asyncio.sleep(0.5)  # the subscriptions reach the publisher
        for _ in range(3):
            out, reply = await run_code(kc, f"print({SECRET!r})")
            assert reply["status"] == "ok" and out.strip() == SECRET
        out, _ = await asyncio.to_thread(proc.communicate, timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    return json.loads(out.strip().splitlines()[-1])


def test_ipc_is_the_default_and_tcp_is_documented_as_shared():
    schema = json.loads(files("sshpyk").joinpath("resources/ssh-kernel.schema.json").read_text())
    prop = schema["properties"]["transport"]
    assert prop["default"] == "ipc" == SSHKernelConfig("h", "/p", "k").transport
    assert "other user" in prop["description"]


async def test_other_users_of_the_host_cannot_reach_the_default_channels(
    netns_hosts, specs, managers, channels
):
    th = netns_hosts
    km = managers(specs("ssh-default-transport"))
    kc = await start(km)
    remote = km.provisioner.remote
    assert remote["transport"] == "ipc"
    pid = remote["pid"]
    paths = [f"{remote['ip']}-{p}" for p in remote["ports"]]
    sockdir = paths[0].rsplit("/", 1)[0]
    assert _sh(th, f"stat -c '%a %U' {shlex.quote(sockdir)}") == f"700 {th.user}"
    # No channel is a TCP port.  ipykernel binds one itself, hard-coded on 127.0.0.1: a PULL
    # for the output of forked children, accepting only messages that carry a random token.
    # It is probed like the rest below: nothing can be read from it.
    ports = _tcp_listeners(th, pid)
    assert len(ports) <= 1, ports
    if channels == "forward":
        assert [f.split(":", 2)[2] for f in km.provisioner.forwards] == paths  # stream-local
    else:  # no forward: the hub is the kernel's peer, and its own socket is private too
        assert km.provisioner.forwards == []
        assert remote["relay"] == f"{sockdir}/k-r", remote["relay"]
        paths.append(remote["relay"])
    seen = await _snoop(th, kc, pid, paths, ports)
    assert set(seen["unix"].values()) == {"PermissionError"}, seen
    assert not any(SECRET in m for m in seen["received"]), seen["received"][:3]
    kc.stop_channels()
    await km.shutdown_kernel()
    assert kernel_procs(th) == []


# forward only: the relay's kernel listens on ipc whatever the transport says
async def test_tcp_stays_an_option_and_is_what_others_can_read(netns_hosts, specs, managers):
    """What ``transport: tcp`` means (and why it is no longer the default)."""
    th = netns_hosts
    km = managers(specs("ssh-tcp", transport="tcp"))
    kc = await start(km)
    remote = km.provisioner.remote
    assert remote["transport"] == "tcp"
    ports = _tcp_listeners(th, remote["pid"])
    assert set(remote["ports"]) <= set(ports)
    seen = await _snoop(th, kc, remote["pid"], [], remote["ports"])
    assert any(SECRET in m for m in seen["received"]), "iopub on tcp is readable by others"
    first = [km.get_connection_info()[n] for n in PORT_NAMES]
    await km.restart_kernel()
    await kc.wait_for_ready(timeout=30)
    assert [km.get_connection_info()[n] for n in PORT_NAMES] == first
    out, _ = await run_code(kc, "print(6*7)")
    assert out.strip() == "42"
    kc.stop_channels()
    await km.shutdown_kernel()
    assert kernel_procs(th) == []


@pytest.fixture
def long_home(netns_hosts):
    """A remote python whose $HOME is too long for a unix socket path under ~/.sshpyk."""
    th = netns_hosts
    home = _sh(th, 'echo "$HOME"')
    deep = home + "/" + "/".join(["a-rather-long-directory-name"] * 3)
    wrapper = (
        f'#!/bin/sh\nHOME={shlex.quote(deep)} exec {th.remote_python_prefix}/bin/python "$@"\n'
    )
    _sh(
        th,
        f"mkdir -p {shlex.quote(deep)} ~/longhome-env/bin && "
        f"printf %s {shlex.quote(wrapper)} > ~/longhome-env/bin/python && "
        "chmod 755 ~/longhome-env/bin/python",
    )
    assert len(deep + "/.sshpyk/run/12345678-1/k-5") > 107
    yield deep
    _sh(th, "rm -rf ~/longhome-env ~/a-rather-long-directory-name")


async def test_a_long_home_gets_a_short_private_socket_dir(
    netns_hosts, specs, managers, channels, long_home
):
    th = netns_hosts
    km = managers(specs("ssh-long-home", remote_python_prefix="~/longhome-env", transport="ipc"))
    kc = await start(km)
    dirs = []
    for round_ in range(2):  # and again after a restart
        remote = km.provisioner.remote
        assert remote["rundir"].startswith(long_home + "/.sshpyk/run/")
        sockdir = remote["ip"].rsplit("/", 1)[0]
        assert len(remote["ip"] + "-5") < 104 and not sockdir.startswith(long_home)
        if channels == "relay":  # the hub's socket fits as well
            assert remote["relay"] == f"{sockdir}/k-r" and len(remote["relay"]) < 104
        assert _sh(th, f"stat -c '%a %U' {shlex.quote(sockdir)}") == f"700 {th.user}"
        out, _ = await run_code(kc, "print(6*7)")
        assert out.strip() == "42"
        dirs.append(sockdir)
        if round_ == 0:
            await km.restart_kernel()
            await kc.wait_for_ready(timeout=30)
    assert dirs[0] != dirs[1]
    kc.stop_channels()
    await km.shutdown_kernel()
    assert kernel_procs(th) == []
    left = _sh(th, f"ls -d {' '.join(dirs)} 2>/dev/null; true")
    assert left == "", f"socket dirs left behind: {left}"


# forward only: the forwarding refusal (test_relay runs a relay kernel on that host)
async def test_a_host_without_stream_local_forwarding_names_tcp(netns_hosts, specs, managers):
    """sshd ``AllowStreamLocalForwarding no`` (the harness's ``noforward`` alias): the launch
    fails at once and says how to get a kernel there anyway."""
    km = managers(specs("ssh-noforward", ssh_host_alias="noforward"))
    t0 = time.monotonic()
    with pytest.raises(SSHPykError) as err:
        await km.start_kernel()
    assert time.monotonic() - t0 < 15
    assert "transport: tcp" in str(err.value), err.value
    assert "AllowStreamLocalForwarding" in str(err.value)
    assert kernel_procs(netns_hosts) == []
