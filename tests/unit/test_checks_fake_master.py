"""Every health check's verdicts against a fake master (and a fake ``ssh`` for the local
checks): ok, warn, fail, and what is skipped after a failure.

The fake master answers the remote inspection with a canned environment; its forwards are
loopback listeners that greet like a ZeroMQ peer, hang up (a refused channel) or stay
silent (no verdict)."""

from __future__ import annotations

import asyncio
import json

import pytest

from sshpyk import remote_env
from sshpyk.checks import CHECK_IDS, STOPS, Checker, check_many
from sshpyk.errors import SSHConnectError, SSHPykError
from sshpyk.remote.protocol import MARK
from sshpyk.states import CheckStatus
from sshpyk.transport import Target

OK, WARN, FAIL, SKIPPED = (CheckStatus.OK, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.SKIPPED)
GOOD_ENV = {
    "system": "Linux h 6.1",
    "python": "3.12.1",
    "jupyter_client": "8.6.0",
    "kernelspecs": {
        "python3": {
            "display_name": "Python 3",
            "language": "python",
            "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "interrupt_mode": "signal",
        },
        "broken": {"error": "bad kernel.json"},
    },
    "sshfs": "/usr/bin/sshfs",
    "mount_points": {},
}


def _line(msg: dict) -> str:
    return f"{MARK}{json.dumps(msg)}\n"


class _Stdin:
    def write(self, data):
        pass

    async def drain(self):
        pass

    def close(self):
        pass


class _ProbeSession:
    """The forwarding probe's session: it reports where it listens, then waits."""

    def __init__(self):
        self.returncode = None
        self._ended = asyncio.Event()
        self.stdin, self.stdout, self.stderr = _Stdin(), asyncio.StreamReader(), None
        self.stdout.feed_data(_line({"shell_pid": 3}).encode() + _line({"probe": 4242}).encode())

    def kill(self):
        self.returncode = -9
        self._ended.set()

    async def wait(self):
        await self._ended.wait()
        return self.returncode


class FakeMaster:
    def __init__(self, env=None, *, channel="greets", connect_error=None, forward_ok=True):
        self.env = dict(GOOD_ENV) if env is None else env
        self.channel, self.connect_error, self.forward_ok = channel, connect_error, forward_ok
        self.runs: list[str] = []
        self.forwards: list[list[str]] = []
        self.cancelled: list[list[str]] = []
        self._servers: list[asyncio.base_events.Server] = []

    async def ensure(self, timeout):
        if self.connect_error:
            raise self.connect_error

    async def run(self, command, *, input=None, timeout=30):
        self.runs.append(command)
        return 0, _line({"shell_pid": 2}) + _line(self.env), ""

    async def open_session(self, command):
        return _ProbeSession()

    async def forward(self, specs):
        self.forwards.append(specs)
        if not self.forward_ok:
            return False, "forwarding request failed"
        port = int(specs[0].split(":")[1])

        async def peer(reader, writer):
            if self.channel == "greets":
                writer.write(b"\xff")
                await writer.drain()
            if self.channel != "silent":
                writer.close()
                return
            await asyncio.sleep(5)

        self._servers.append(await asyncio.start_server(peer, "127.0.0.1", port))
        return True, ""

    async def cancel(self, specs):
        self.cancelled.append(specs)
        for server in self._servers:
            server.close()


@pytest.fixture
def fake_ssh(tmp_path):
    """An ``ssh`` that answers -V and -G (with ssh_G.out) and connects nowhere."""
    key = tmp_path / "id_test"
    key.write_text("")
    ssh = tmp_path / "ssh"
    ssh.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = -V ]; then echo "OpenSSH_9.6p1 fake" >&2; exit 0; fi\n'
        f'cat "{tmp_path}/ssh_G.out"; exit "$(cat "{tmp_path}/ssh_G.rc")"\n'
    )
    ssh.chmod(0o755)
    (tmp_path / "ssh_G.out").write_text(
        f"hostname h.example\nuser alice\nport 22\nproxyjump none\nidentityfile {key}\n"
    )
    (tmp_path / "ssh_G.rc").write_text("0")
    return ssh


def _model(fake_ssh, **over) -> dict:
    return {
        "kernel_name": "k",
        "ssh_host_alias": "h",
        "ssh": str(fake_ssh),
        "remote_python_prefix": "/opt/py",
        "remote_kernel_name": "python3",
        "transport": "tcp",
        **over,
    }


def run_checks(model: dict, master: FakeMaster, timeout: float = 3) -> dict:
    pool = {f"{Target.from_config(model).key}-0": master}
    checks = asyncio.run(Checker(timeout, masters=pool).check(model))
    return {c.id: c for c in checks}


def test_everything_in_place_is_ok(fake_ssh):
    model = _model(fake_ssh)
    got = run_checks(model, FakeMaster())
    # no mounts, no slurm: neither check
    assert list(got) == [c for c in CHECK_IDS if c not in ("sshfs", "slurm", "container")]
    assert {c.status for c in got.values()} == {OK}, got
    assert "OpenSSH_9.6p1 fake" in got["ssh_client"].value
    assert got["host_alias"].value == "alice@h.example:22"
    assert got["remote_python"].value == "/opt/py/bin/python 3.12.1"
    assert got["remote_kernel"].data["interrupt_mode"] == "signal"
    assert got["port_forwarding"].value == "TCP forwarding works"
    assert json.loads(json.dumps(got["connection"].to_dict()))["status"] == "ok"


def test_a_missing_ssh_client_skips_everything(fake_ssh, tmp_path):
    got = run_checks(_model(fake_ssh, ssh=str(tmp_path / "no-ssh")), FakeMaster())
    assert got["ssh_client"].status == FAIL and "openssh-client" in got["ssh_client"].hint
    rest = [c for c in got.values() if c.id != "ssh_client"]
    assert rest and all(c.status == SKIPPED and c.hint == STOPS["ssh_client"] for c in rest)


def test_a_missing_config_file_fails(fake_ssh, tmp_path):
    got = run_checks(_model(fake_ssh, ssh_config=str(tmp_path / "nope")), FakeMaster())
    assert got["ssh_config"].status == FAIL
    assert got["connection"].status == SKIPPED


def test_an_alias_ssh_cannot_resolve_fails_without_quoting_ssh(fake_ssh, tmp_path):
    (tmp_path / "ssh_G.out").write_text("")
    (tmp_path / "ssh_G.rc").write_text("255")
    got = run_checks(_model(fake_ssh), FakeMaster())
    assert got["host_alias"].status == FAIL
    assert got["connection"].hint == STOPS["host_alias"]


def test_no_key_and_an_unknown_alias_are_warnings(fake_ssh, tmp_path):
    (tmp_path / "ssh_G.out").write_text("hostname h\nuser bob\nport 2222\nproxyjump b\n")
    got = run_checks(_model(fake_ssh), FakeMaster())
    assert got["host_alias"].status == WARN and "ssh agent" in got["host_alias"].hint
    assert got["host_alias"].value == "bob@h:2222 via b"
    key = tmp_path / "id_test"
    (tmp_path / "ssh_G.out").write_text(f"hostname h\nuser bob\nport 22\nidentityfile {key}\n")
    got = run_checks(_model(fake_ssh), FakeMaster())
    assert got["host_alias"].status == WARN and "not a Host" in got["host_alias"].hint
    assert got["connection"].status == OK  # a warning stops nothing


def test_no_connection_fails_and_skips_the_remote_checks(fake_ssh):
    err = SSHConnectError("connecting to 'h' timed out", kind="unreachable")
    got = run_checks(_model(fake_ssh), FakeMaster(connect_error=err))
    assert got["connection"].status == FAIL and got["connection"].value == "unreachable"
    assert [c.status for c in got.values()][4:] == [SKIPPED] * 5


def test_a_missing_prefix_skips_the_system_and_fails_the_python(fake_ssh):
    got = run_checks(_model(fake_ssh), FakeMaster({"error": "prefix_missing"}))
    assert got["remote_system"].status == SKIPPED
    assert got["remote_python"].status == FAIL
    assert got["remote_python"].hint == "remote python prefix '/opt/py' does not exist on 'h'"
    assert got["jupyter_client"].hint == STOPS["remote_python"]
    got = run_checks(_model(fake_ssh), FakeMaster({"error": "python_missing"}))
    hint = got["remote_python"].hint
    assert "/opt/py/bin/python (or python3) on 'h' is missing or not executable" in hint


def test_an_inspection_without_answer_fails_the_system(fake_ssh):
    master = FakeMaster()

    async def silent(command, *, input=None, timeout=30):
        return 1, "", "bash: line 1: python: not found"

    master.run = silent
    got = run_checks(_model(fake_ssh), master)
    assert got["remote_system"].status == FAIL and "not found" in got["remote_system"].hint


def test_missing_jupyter_client_fails(fake_ssh):
    got = run_checks(_model(fake_ssh), FakeMaster({**GOOD_ENV, "jupyter_client": None}))
    assert got["jupyter_client"].status == FAIL
    assert got["jupyter_client"].hint == "pip install jupyter_client in /opt/py on h"
    assert got["remote_kernel"].status == SKIPPED


def test_a_missing_or_broken_kernelspec_fails_but_the_rest_is_checked(fake_ssh):
    got = run_checks(_model(fake_ssh, remote_kernel_name="r"), FakeMaster())
    assert got["remote_kernel"].status == FAIL
    assert got["remote_kernel"].hint == "available: broken, python3"
    assert got["port_forwarding"].status == OK
    got = run_checks(_model(fake_ssh, remote_kernel_name="broken"), FakeMaster())
    assert got["remote_kernel"].hint == "bad kernel.json"


def test_a_refused_channel_names_the_sshd_option(fake_ssh):
    master = FakeMaster(channel="hangs up")
    got = run_checks(_model(fake_ssh), master)
    check = got["port_forwarding"]
    assert check.status == FAIL and "AllowTcpForwarding no" in check.hint
    assert master.cancelled == master.forwards  # the probe's forward is taken back
    got = run_checks(_model(fake_ssh, transport="ipc"), FakeMaster(channel="hangs up"))
    assert "AllowStreamLocalForwarding" in got["port_forwarding"].hint


def test_a_silent_channel_is_a_warning_and_a_failed_forward_a_failure(fake_ssh):
    got = run_checks(_model(fake_ssh), FakeMaster(channel="silent"), timeout=0.5)
    assert got["port_forwarding"].status == WARN
    got = run_checks(_model(fake_ssh), FakeMaster(forward_ok=False))
    assert got["port_forwarding"].status == FAIL
    assert got["port_forwarding"].hint.startswith("could not test it: ssh -O forward failed")


def test_sshfs_pieces(fake_ssh, tmp_path):
    mounts = [{"local_path": str(tmp_path), "remote_path": "~/m"}]
    model = _model(fake_ssh, mount_local_on_remote=mounts)
    assert run_checks(model, FakeMaster())["sshfs"].status == OK
    got = run_checks(model, FakeMaster({**GOOD_ENV, "sshfs": None}))
    assert got["sshfs"].status == FAIL and "install sshfs on h" in got["sshfs"].hint
    gone = [{"local_path": str(tmp_path / "gone"), "remote_path": "~/m"}]
    got = run_checks(_model(fake_ssh, mount_local_on_remote=gone), FakeMaster())
    assert got["sshfs"].status == FAIL and got["sshfs"].value == str(tmp_path / "gone")
    busy = {**GOOD_ENV, "mount_points": {"~/m": "not empty"}}
    got = run_checks(model, FakeMaster(busy))
    assert got["sshfs"].status == FAIL and got["sshfs"].value == "~/m: not empty"


def test_kernels_of_one_host_share_the_work(fake_ssh):
    master = FakeMaster()
    models = [_model(fake_ssh, kernel_name=f"k{i}") for i in range(5)]
    pool = {f"{Target.from_config(models[0]).key}-0": master}
    seen: list[tuple[str, str]] = []
    out = asyncio.run(
        check_many(models, on_result=lambda n, c: seen.append((n, c.id)), masters=pool)
    )
    assert sorted(out) == [f"k{i}" for i in range(5)]
    assert len(master.runs) == 1 and len(master.forwards) == 1  # one inspection, one probe
    assert len(seen) == 5 * 9


def test_remote_env_inspect_says_why_it_failed():
    master = FakeMaster()

    async def noise_only(command, *, input=None, timeout=30):
        return 0, _line({"shell_pid": 1}) + "welcome\n", ""

    master.run = noise_only
    with pytest.raises(SSHPykError) as e:
        asyncio.run(remote_env.inspect(master, "/opt/py"))
    assert e.value.kind == "inspect_failed"
    assert asyncio.run(remote_env.inspect(FakeMaster(), "/opt/py"))["python"] == "3.12.1"
