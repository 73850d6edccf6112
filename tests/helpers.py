"""Helpers shared by the integration and resilience tests: which processes a test host runs
for this instance, how a test starts a kernel and runs code in it, how it waits, how it runs
the ``sshpyk`` command and calls the REST API, what an SSHFS mount leaves behind.  Test
modules never import each other: what two of them share lives here (fixtures in
``conftest.py``).

They need the real test hosts (``tests/harness``), never a fake: the unit tier
(``tests/unit``) has no use for them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from jupyter_client import AsyncKernelClient
from jupyter_client.ioloop import AsyncIOLoopKernelManager as AsyncKernelManager
from tornado.httpclient import HTTPClientError

from harness import procinfo
from sshpyk.remote.protocol import LOADER


def remote_procs(th, host="remote") -> list[str]:
    """Live processes started through this instance's sshd of ``host`` (they carry its
    SetEnv markers), apart from sshd itself.  The test hosts share this machine's pid
    namespace, so /proc (``ps`` on a Mac) sees them all, and other instances' processes are
    left out."""
    marks = {f"SPK_HOST={host}", f"SPK_STATE={th.state}"}
    return [
        f"{p.pid} {p.cmdline}"
        for p in procinfo.processes(with_env=True)
        if marks <= p.env and not p.zombie and not p.cmdline.startswith("sshd")
    ]


# how a remote program sent on stdin shows in ps: the loader's first statement
LOADER_MARK = LOADER.split(";", 1)[0]


def kernel_procs(th, host="remote") -> list[str]:
    return [
        p
        for p in remote_procs(th, host)
        if "ipykernel" in p or "sshpyk-launcher" in p or f"-c {LOADER_MARK}" in p
    ]


def local_ssh_procs(config: Path) -> list[str]:
    found = []
    for p in procinfo.processes():
        argv = p.cmdline.split(" ")
        if argv[0].endswith("ssh") and str(config) in argv:
            found.append(p.cmdline)
    return found


async def start(km: AsyncKernelManager):
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=30)
    return kc


async def run_code(kc, code: str, timeout: float = 20) -> tuple[str, dict]:
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "execute_result":
            out.append(msg["content"]["data"]["text/plain"])

    reply = await kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    return "".join(out), reply["content"]


async def wait_until(pred, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pred():
            return True
        await asyncio.sleep(step)
    return False


async def _state_is(prov, *states) -> bool:
    return prov.state in states


async def wait_state(prov, timeout, *states) -> float:
    """Seconds until the provisioner is in one of ``states``; fails after ``timeout``."""
    t0 = time.monotonic()
    assert await wait_until(lambda: _state_is(prov, *states), timeout, 0.05), (
        f"state {prov.state!r} ({prov.step}), wanted {states}"
    )
    return time.monotonic() - t0


# ---- a Jupyter server in its own process, and the sshpyk command -------------------------


class Server:
    """A real ``jupyter server`` with sshpyk, in its own process (so it can be kill -9'd)."""

    def __init__(self, tmp: Path, env: dict):
        self.env = env
        self.port = free_port()
        self.token = "t0k3n"
        self.log = open(tmp / f"server-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--no-browser",
                "--allow-root",
                f"--port={self.port}",
                "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={tmp}",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def call(self, method: str, path: str, body=None, timeout=60) -> tuple[int, object]:
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        client = AsyncHTTPClient()
        try:
            r = await client.fetch(
                self.url(path),
                method=method,
                headers={"Authorization": f"token {self.token}"},
                body=None if body is None else json.dumps(body),
                allow_nonstandard_methods=True,
                request_timeout=timeout,
            )
        except HTTPClientError as e:
            r = e.response
            if r is None:
                raise
        return r.code, (json.loads(r.body) if r.body else None)

    async def ready(self) -> None:
        async def up():
            try:
                return (await self.call("GET", "api/status", timeout=2))[0] == 200
            except OSError:
                return False

        assert await wait_until(up, 30, 0.2), "jupyter server did not come up"

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kernel_client(runtime: Path, kernel_id: str) -> AsyncKernelClient:
    """A client of a kernel some server started, from its connection file in ``runtime``."""
    kc = AsyncKernelClient()
    kc.load_connection_file(str(runtime / f"kernel-{kernel_id}.json"))
    kc.start_channels()
    return kc


async def kernel_with_state(server, spec: str, code: str) -> str:
    """A kernel of ``spec`` started through ``server`` (a real Jupyter server, its runtime dir
    ``$JUPYTER_RUNTIME_DIR``), ready, with ``code`` run in it: state a later server must
    find.  Returns its id; the client is stopped."""
    code_, model = await server.call("POST", "api/kernels", {"name": spec})
    assert code_ == 201, model
    kc = kernel_client(Path(os.environ["JUPYTER_RUNTIME_DIR"]), model["id"])
    await kc.wait_for_ready(timeout=30)
    await run_code(kc, code)
    kc.stop_channels()
    return model["id"]


async def reattached(server, kid: str, timeout: float = 30) -> AsyncKernelClient:
    """The orphan ``kid`` taken up by ``server`` (a new Jupyter server, ready), and a client
    of it, ready."""
    code, model = await server.call("POST", f"sshpyk/orphans/{kid}/attach", {})
    assert code == 201, model
    kc = kernel_client(Path(os.environ["JUPYTER_RUNTIME_DIR"]), kid)
    await kc.wait_for_ready(timeout=timeout)
    return kc


def sshpyk_cli(*args: str) -> subprocess.CompletedProcess:
    """The installed ``sshpyk`` command, as a user runs it."""
    exe = str(Path(sys.executable).parent / "sshpyk")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


# ---- the CLI as users run it (a subprocess) -----------------------------------------------

BIN = Path(sys.executable).parent


def sshpyk(env, *args, via_jupyter=False, timeout=120):
    argv = [str(BIN / "jupyter"), "sshpyk", *args] if via_jupyter else [str(BIN / "sshpyk"), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)


def add_args(test_hosts, name="ssh-r", alias="remote", **over):
    opts = {
        "--kernel-name": name,
        "--display-name": f"Remote {name}",
        "--language": "python",
        "--ssh-host-alias": alias,
        "--ssh-config": str(test_hosts.ssh_config),
        "--remote-python-prefix": test_hosts.remote_python_prefix,
        "--remote-kernel-name": "python3",
        **over,
    }
    out = []
    for k, v in opts.items():
        if v is not None:
            out += [k, str(v)]
    return out


def kernel_json(env, name) -> dict:
    return json.loads(
        (Path(env["JUPYTER_DATA_DIR"]) / "kernels" / name / "kernel.json").read_text()
    )


# ---- the REST API through jp_fetch ------------------------------------------------------------


def body_of(test_hosts, name="rest-remote", **over):
    data = {
        "kernel_name": name,
        "display_name": f"REST {name}",
        "language": "python",
        "ssh_host_alias": "remote",
        "ssh_config": str(test_hosts.ssh_config),
        "remote_python_prefix": test_hosts.remote_python_prefix,
        "remote_kernel_name": "python3",
        "launch_timeout": 30,
        **over,
    }
    return {k: v for k, v in data.items() if v is not ...}


async def call(jp_fetch, *path, method="GET", body=None, params=None, expect=200):
    kw = {"method": method, "allow_nonstandard_methods": True}
    if body is not None:
        kw["body"] = body if isinstance(body, (bytes, str)) else json.dumps(body)
    if params:
        kw["params"] = params
    try:
        r = await jp_fetch(*path, **kw)
    except HTTPClientError as e:
        r = e.response
    assert r.code == expect, (r.code, r.body[:500])
    return (
        json.loads(r.body)
        if r.body and r.headers.get("Content-Type", "").startswith("application/json")
        else r.body
    )


# ---- SSHFS mounts: what a mount leaves on the hosts, what a write could change -------------

SETID = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX


def remote_mounts(th, host="remote") -> list[str]:
    out = th.ssh(host, "cat /proc/self/mountinfo").stdout
    return [ln.split(" - ")[0].split()[4] for ln in out.splitlines() if " fuse.sshfs " in ln]


def sshfs_procs(th) -> list[str]:
    return [p for p in remote_procs(th) if "sshfs" in p.split(" ", 2)[1] or "sshpyk-mount" in p]


def local_servers(share: Path) -> list[int]:
    return [
        p.pid
        for p in procinfo.processes()
        if "sshpyk.sftp_server" in p.cmdline and str(share) in p.cmdline
    ]


def snapshot(root):
    """Everything a write could change: names, types, modes, owners, sizes, times, data."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            data = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None  # noqa: SIM115
            key = os.path.relpath(p, root)
            out[key] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, data)
    return out
