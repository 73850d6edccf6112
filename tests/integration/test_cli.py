"""The CLI, as users run it (a subprocess), against the real test hosts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import BIN, add_args, kernel_json, sshpyk

from harness import procinfo
from sshpyk.checks import CHECK_IDS


def test_add_list_check_edit_delete_round_trip(test_hosts, env):
    r = sshpyk(
        env,
        "add",
        *add_args(test_hosts),
        "--launch-timeout",
        "30",
        "--mount-local-on-remote",
        "/tmp:/home/sshpyktest/cli-mnt:reconnect",
    )
    assert r.returncode == 0, r.stderr
    spec = kernel_json(env, "ssh-r")
    cfg = spec["metadata"]["kernel_provisioner"]["config"]
    assert spec["metadata"]["kernel_provisioner"]["provisioner_name"] == "sshpyk-provisioner"
    assert cfg["launch_timeout"] == 30 and cfg["ssh_host_alias"] == "remote"
    assert cfg["mount_local_on_remote"] == [
        {
            "local_path": "/tmp",
            "remote_path": "/home/sshpyktest/cli-mnt",
            "sshfs_options": "reconnect",
        }
    ]
    kdir = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "ssh-r"
    assert {"logo-svg.svg", "logo-64x64.png", "kernel.json"} <= {p.name for p in kdir.iterdir()}

    # the same listing from both entry points, parsed as JSON
    a = sshpyk(env, "list", "--json")
    b = sshpyk(env, "list", "--json", via_jupyter=True)
    assert a.returncode == b.returncode == 0, (a.stderr, b.stderr)
    la, lb = json.loads(a.stdout), json.loads(b.stdout)
    strip = [{k: v for k, v in e.items() if k != "checks"} for e in la["ssh"]]
    assert strip == [{k: v for k, v in e.items() if k != "checks"} for e in lb["ssh"]]
    (ssh,) = la["ssh"]
    status = {c["id"]: c["status"] for c in ssh["checks"]}
    assert status["connection"] == "ok" and status["remote_kernel"] == "ok", ssh["checks"]
    assert status["jupyter_client"] == "ok"
    assert status["sshfs"] == "ok"  # /tmp exists locally and sshfs is on the remote

    text = sshpyk(env, "list", "--remote")
    assert text.returncode == 0
    assert "------ SSH Kernel -------" in text.stdout
    assert "SSH Host Alias:" in text.stdout and "(v)" in text.stdout
    assert "\033[" not in text.stdout  # no colours when not on a terminal
    assert "----- Local Kernel ------" not in text.stdout

    chk = sshpyk(env, "check", "--kernel-name", "ssh-r", "--json")
    assert chk.returncode == 0, chk.stdout
    ids = [c["id"] for c in json.loads(chk.stdout)["checks"]]
    assert ids[:8] == list(CHECK_IDS[:8])  # every check, in the documented order

    ed = sshpyk(
        env,
        "edit",
        "--kernel-name",
        "ssh-r",
        "--display-name",
        "Renamed",
        "--clear",
        "launch_timeout",
        "--remove-mount",
        "/home/sshpyktest/cli-mnt",
        "--transport",
        "tcp",  # not the default (ipc): kept in kernel.json
    )
    assert ed.returncode == 0, ed.stderr
    cfg = kernel_json(env, "ssh-r")["metadata"]["kernel_provisioner"]["config"]
    assert "launch_timeout" not in cfg and "mount_local_on_remote" not in cfg
    assert cfg["transport"] == "tcp"
    assert kernel_json(env, "ssh-r")["display_name"] == "Renamed"

    assert sshpyk(env, "add", *add_args(test_hosts)).returncode == 2  # exists
    assert sshpyk(env, "add", *add_args(test_hosts), "--replace").returncode == 0
    d = sshpyk(env, "delete", "ssh-r")
    assert d.returncode == 0, d.stderr
    assert not kdir.exists()
    assert sshpyk(env, "delete", "--kernel-name", "ssh-r").returncode == 2


def test_proxyjump_kernel_checks_green(test_hosts, env):
    assert sshpyk(env, "add", *add_args(test_hosts, "ssh-int", "internal")).returncode == 0
    chk = sshpyk(env, "check", "--kernel-name", "ssh-int")
    assert chk.returncode == 0, chk.stdout
    assert "(x)" not in chk.stdout
    assert "via bastion" in chk.stdout


def test_failed_checks_say_why(test_hosts, env):
    assert (
        sshpyk(
            env, "add", *add_args(test_hosts, "ssh-nokernel", **{"--remote-kernel-name": "nope"})
        ).returncode
        == 0
    )
    chk = sshpyk(env, "check", "--kernel-name", "ssh-nokernel", "--json")
    assert chk.returncode == 1
    by = {c["id"]: c for c in json.loads(chk.stdout)["checks"]}
    assert by["remote_kernel"]["status"] == "fail"
    assert "python3" in by["remote_kernel"]["hint"]
    assert (
        sshpyk(env, "add", *add_args(test_hosts, "ssh-unknown", "no-such-host.invalid")).returncode
        == 0
    )
    chk = sshpyk(env, "check", "--kernel-name", "ssh-unknown", "--json")
    by = {c["id"]: c for c in json.loads(chk.stdout)["checks"]}
    assert by["connection"]["status"] == "fail"
    assert by["remote_kernel"]["status"] == "skipped"


def test_local_kernels_are_listed_and_never_deleted(env, tmp_path):
    local = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "mylocal"
    local.mkdir(parents=True)
    (local / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Mine",
                "language": "python",
            }
        )
    )
    out = sshpyk(env, "list", "--local")
    assert "----- Local Kernel ------" in out.stdout and "mylocal" in out.stdout
    r = sshpyk(env, "delete", "mylocal")
    assert r.returncode == 2
    assert "local kernel" in r.stderr
    assert (local / "kernel.json").exists()


def test_a_corrupt_kernelspec_never_breaks_the_listing(test_hosts, env):
    assert sshpyk(env, "add", *add_args(test_hosts, "good")).returncode == 0
    bad = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "broken"
    bad.mkdir(parents=True)
    (bad / "kernel.json").write_text("{not json")
    evil = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "evil"
    evil.mkdir(parents=True)
    spec = kernel_json(env, "good")
    spec["metadata"]["kernel_provisioner"]["config"]["ssh_host_alias"] = "-oProxyCommand=x"
    (evil / "kernel.json").write_text(json.dumps(spec))
    r = sshpyk(env, "list", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    names = {e["name"]: e for e in data["local"] + data["ssh"]}
    assert "error" in names["broken"]
    assert names["evil"]["error"]["field"] == "ssh_host_alias"
    assert {c["status"] for c in names["good"]["checks"]} <= {"ok", "warn"}
    text = sshpyk(env, "list", "--no-check")
    assert text.returncode == 0 and "Error:" in text.stdout


BAD_INPUTS = [
    ("alias-option", {"--ssh-host-alias": "-oProxyCommand=touch /tmp/sshpyk-pwned"}),
    ("alias-semicolon", {"--ssh-host-alias": "remote;touch /tmp/sshpyk-pwned"}),
    ("prefix-subst", {"--remote-python-prefix": "/opt/$(touch /tmp/sshpyk-pwned)"}),
    ("prefix-relative", {"--remote-python-prefix": "opt/env"}),
    ("prefix-newline", {"--remote-python-prefix": "/opt/env\ntouch /tmp/sshpyk-pwned"}),
    ("name-upper", {"--kernel-name": "Bad Name"}),
    ("timeout-text", {"--launch-timeout": "soon"}),
    ("timeout-zero", {"--launch-timeout": "0"}),
    ("transport", {"--transport": "udp"}),
    ("ssh-option", {"--ssh": "-oProxyCommand=x"}),
    # review L2: "$" matched before a final newline, and "." / ".." name directories
    ("name-newline", {"--kernel-name": "k\n"}),
    ("name-dot", {"--kernel-name": "."}),
    ("name-dotdot", {"--kernel-name": ".."}),
    ("alias-newline", {"--ssh-host-alias": "remote\n"}),
    ("remote-kernel-newline", {"--remote-kernel-name": "python3\n"}),
]


@pytest.mark.parametrize(("case", "over"), BAD_INPUTS, ids=[c for c, _ in BAD_INPUTS])
def test_bad_input_exits_2_and_writes_nothing(test_hosts, env, case, over):
    r = sshpyk(env, "add", *add_args(test_hosts, **over))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.strip(), "the error must say what is wrong"
    assert not (Path(env["JUPYTER_DATA_DIR"]) / "kernels").exists() or not any(
        (Path(env["JUPYTER_DATA_DIR"]) / "kernels").iterdir()
    )
    assert not Path("/tmp/sshpyk-pwned").exists()


@pytest.mark.parametrize(
    "mount",
    [
        "/a",
        "/a:/b:c:d",
        "/a:relative",
        "/a:/b\n/c:/d",
        "/a:/b:ssh_command=touch",
        "/a:/b:opt with space",
    ],
)
def test_bad_mount_specs(test_hosts, env, mount):
    r = sshpyk(env, "add", *add_args(test_hosts), "--mount-local-on-remote", mount)
    assert r.returncode == 2, r.stderr
    assert "mount_local_on_remote" in r.stderr


def test_edit_rejects_bad_values_and_keeps_the_file(test_hosts, env):
    assert sshpyk(env, "add", *add_args(test_hosts)).returncode == 0
    before = kernel_json(env, "ssh-r")
    for args in (
        ["--ssh-host-alias", "-x"],
        ["--clear", "ssh_host_alias"],
        ["--clear", "bogus"],
        ["--remove-mount", "/nope"],
        [],
    ):
        r = sshpyk(env, "edit", "--kernel-name", "ssh-r", *args)
        assert r.returncode == 2, (args, r.stderr)
    assert kernel_json(env, "ssh-r") == before


def test_help_everywhere_and_verbose_logs_prefixed(env):
    for cmd in ([], ["list"], ["add"], ["edit"], ["delete"], ["check"], ["demo"]):
        r = sshpyk(env, *cmd, "--help")
        assert r.returncode == 0 and "usage:" in r.stdout
    r = sshpyk(env, "-vvv", "list", "--local")
    assert r.returncode == 0
    assert all(line.startswith("SSHPYK ") for line in r.stderr.splitlines() if line.strip())


def test_demo_start_launch_stop_leaves_nothing(env):
    # as after `./dev demo`: the user's shell has no venv on PATH, so the hints must name
    # the CLI by a path that shell finds (.venv/bin/sshpyk from the repository root)
    root_dir = Path(__file__).resolve().parents[2]
    shell_env = {k: v for k, v in env.items() if k != "VIRTUAL_ENV"}
    shell_env["PATH"] = "/usr/bin:/bin"
    r = subprocess.run(
        [str(BIN / "sshpyk"), "demo"],
        capture_output=True,
        text=True,
        env=shell_env,
        cwd=root_dir,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    try:
        _demo_round_trip(env, r, root_dir, shell_env)
    finally:  # a failed assertion must not leave the demo's sshd running
        sshpyk(env, "demo", "--stop")


def _demo_round_trip(env, r, root_dir, shell_env):
    from sshpyk.control_dir import control_dir

    assert "Python (SSH demo: localhost)" in r.stdout
    me = os.path.normpath(os.path.abspath(BIN / "sshpyk"))
    if me.startswith(str(root_dir) + "/"):
        me = str(Path(me).relative_to(root_dir))
    (stop_hint,) = [ln.split("#")[0].strip() for ln in r.stdout.splitlines() if "--stop" in ln]
    assert stop_hint == f"{me} demo --stop", r.stdout
    root = Path(env["JUPYTER_DATA_DIR"]) / "sshpyk" / "demo"
    assert oct(root.stat().st_mode & 0o777) == "0o700"
    spec = kernel_json(env, "ssh-demo")
    assert spec["display_name"] == "Python (SSH demo: localhost)"

    code = (
        "import asyncio\n"
        "from jupyter_client.ioloop import AsyncIOLoopKernelManager\n"
        "async def main():\n"
        "    km = AsyncIOLoopKernelManager(kernel_name='ssh-demo')\n"
        "    await km.start_kernel()\n"
        "    kc = km.client(); kc.start_channels(); await kc.wait_for_ready(timeout=30)\n"
        "    out = []\n"
        "    await kc.execute_interactive('import os; print(os.environ[\"SSHPYK_DEMO\"])',\n"
        "        output_hook=lambda m: out.append(m['content'].get('text', '')))\n"
        "    print(''.join(out).strip())\n"
        "    kc.stop_channels(); await km.shutdown_kernel()\n"
        "asyncio.run(main())\n"
    )
    k = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert k.returncode == 0, k.stderr
    assert k.stdout.strip() == str(root)  # the kernel ran behind the demo's sshd

    # the printed hint itself, run by the user's shell, stops it all
    stop = subprocess.run(
        ["sh", "-c", stop_hint], capture_output=True, text=True, env=shell_env, cwd=root_dir
    )
    assert stop.returncode == 0, stop.stderr
    assert not root.exists()
    assert not root.parent.exists(), "an empty <data dir>/sshpyk stayed behind"
    assert not (Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "ssh-demo").exists()
    marker = f"SSHPYK_DEMO={root}"
    left = [p.pid for p in procinfo.processes(with_env=True) if marker in p.env and not p.zombie]
    assert left == []
    assert control_dir().is_dir()
    again = sshpyk(env, "demo", "--stop")
    assert again.returncode == 0 and "no demo" in again.stdout
