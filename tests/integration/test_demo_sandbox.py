"""The `sshpyk demo` sandbox: a real private sshd, no mocks."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from harness.topology import pid_alive
from sshpyk.demo import (
    DemoError,
    DemoSandbox,
    demo_root,
    load_sandbox,
    start_sandbox,
    stop_sandbox,
)

pytestmark = pytest.mark.skipif(
    not Path("/usr/sbin/sshd").exists() or not shutil.which("ssh"),
    reason="needs OpenSSH (/usr/sbin/sshd and ssh)",
)


def marked(root: Path) -> list[int]:
    mark = f"SSHPYK_DEMO={root}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if mark in env and pid_alive(int(d.name)):
            found.append(int(d.name))
    return found


def holding_log(root: Path) -> list[int]:
    """sshd processes of the sandbox (their environ is overwritten by the process title)."""
    log = str(root / "sshd.log")
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            links = [os.readlink(f) for f in (d / "fd").iterdir()]
        except OSError:
            continue
        if any(x in (log, log + " (deleted)") for x in links) and pid_alive(int(d.name)):
            found.append(int(d.name))
    return found


def ssh(sb: DemoSandbox, command: str, config: Path | None = None, timeout: float = 20):
    return subprocess.run(
        ["ssh", "-F", str(config or sb.ssh_config), sb.alias, command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def user_ssh_snapshot() -> dict | None:
    d = Path(os.path.expanduser("~"))
    try:
        import pwd

        d = Path(pwd.getpwuid(os.geteuid()).pw_dir)  # what ssh itself would use
    except KeyError:
        pass
    d = d / ".ssh"
    if not d.exists():
        return None
    snap = {".": (d.stat().st_mtime_ns, stat.S_IMODE(d.stat().st_mode))}
    for p in sorted(d.rglob("*")):
        st = p.lstat()
        snap[str(p.relative_to(d))] = (st.st_mtime_ns, st.st_size, stat.S_IMODE(st.st_mode))
    return snap


@pytest.fixture
def jupyter_data(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "jd"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(d))
    return d


@pytest.fixture
def root(tmp_path, jupyter_data) -> Path:
    r = tmp_path / "demo"
    yield r
    # whatever a test left running must not outlive it
    assert stop_sandbox(r) == []


@pytest.fixture
def sandbox(root) -> DemoSandbox:
    t0 = time.monotonic()
    sb = start_sandbox(root)
    elapsed = time.monotonic() - t0
    print(f"start_sandbox took {elapsed:.3f}s")
    assert elapsed < 5, f"start_sandbox took {elapsed:.2f}s"
    return sb


def test_demo_root_honours_jupyter_data_dir(jupyter_data):
    assert demo_root() == jupyter_data / "sshpyk" / "demo"


def test_start_and_login(sandbox, root):
    assert sandbox.root == root
    assert sandbox.alias == "sshpyk-demo"
    assert sandbox.ssh_config == root / "ssh_config"
    assert sandbox.remote_python_prefix == sys.prefix
    assert pid_alive(sandbox.sshd_pid)
    r = ssh(sandbox, "echo $SSHPYK_DEMO")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(root)
    # same user: the local environment is usable as the "remote" one
    py = f"{sandbox.remote_python_prefix}/bin/python"
    r = ssh(sandbox, f"{py} -c 'import jupyter_client, sys; print(sys.prefix)'")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == sys.prefix
    # the listener is on loopback only
    cfg = (root / "sshd_config").read_text()
    assert "ListenAddress 127.0.0.1\n" in cfg
    assert f"Port {sandbox.port}\n" in cfg


def test_permissions(sandbox, root):
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for name in (
        "ssh_config",
        "sshd_config",
        "client_ed25519_key",
        "ssh_host_ed25519_key",
        "authorized_keys",
        "known_hosts",
        "sandbox.json",
        "sshd.log",
    ):
        mode = stat.S_IMODE((root / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    cfg = sandbox.ssh_config.read_text()
    assert "StrictHostKeyChecking yes" in cfg
    assert "StrictHostKeyChecking no" not in cfg
    known = (root / "known_hosts").read_text().split()
    assert known[0] == f"[127.0.0.1]:{sandbox.port}"
    assert known[1] == "ssh-ed25519"
    host_pub = (root / "ssh_host_ed25519_key.pub").read_text().split()
    assert known[2] == host_pub[1]


def test_idempotent_start_and_load_from_another_process(sandbox, root):
    again = start_sandbox(root)
    assert again.sshd_pid == sandbox.sshd_pid
    assert again.port == sandbox.port
    assert load_sandbox(root) == sandbox
    code = (
        "import sys; from pathlib import Path; from sshpyk.demo import load_sandbox; "
        "sb = load_sandbox(Path(sys.argv[1])); print(sb.port, sb.sshd_pid, sb.alias)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(sandbox.port), str(sandbox.sshd_pid), "sshpyk-demo"]


def test_restart_after_sshd_died(sandbox, root):
    os.kill(sandbox.sshd_pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(sandbox.sshd_pid) and time.monotonic() < deadline:
        load_sandbox(root)  # reaps our child, as any later call would
        time.sleep(0.01)
    assert load_sandbox(root) is None
    fresh = start_sandbox(root)
    assert fresh.sshd_pid != sandbox.sshd_pid
    assert ssh(fresh, "true").returncode == 0


def test_stop_ends_background_processes_and_leaves_nothing(sandbox, root):
    r = ssh(sandbox, "nohup sleep 300 >/dev/null 2>&1 & echo $!")
    assert r.returncode == 0, r.stderr
    sleeper = int(r.stdout.strip())
    assert pid_alive(sleeper)
    # mid-execve (nohup -> sleep) its environment reads empty for a moment
    deadline = time.monotonic() + 5
    while sleeper not in marked(root) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sleeper in marked(root)
    t0 = time.monotonic()
    left = stop_sandbox(root)
    print(f"stop_sandbox took {time.monotonic() - t0:.3f}s")
    assert left == []
    assert not pid_alive(sleeper)
    assert not pid_alive(sandbox.sshd_pid)
    assert not root.exists()
    assert marked(root) == []
    assert load_sandbox(root) is None
    assert stop_sandbox(root) == []  # stopping twice is harmless


def test_stop_closes_idle_connections(sandbox, root):
    # what a ControlMaster holds between kernels: a connection with no session at all
    client = subprocess.Popen(
        ["ssh", "-F", str(sandbox.ssh_config), "-N", sandbox.alias],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while len(holding_log(root)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        per_connection = set(holding_log(root)) - {sandbox.sshd_pid}
        assert per_connection, "the per-connection sshd never appeared"
        assert stop_sandbox(root) == []
        assert not any(pid_alive(p) for p in per_connection)
        assert client.wait(timeout=10) != 0  # the server went away under it
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()


def test_port_race_is_retried(root, monkeypatch):
    import sshpyk.demo.sandbox as demo

    # someone grabs the probed port before sshd binds it
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    taken_port = taken.getsockname()[1]
    real, calls = demo._free_port, []

    def racy_free_port() -> int:
        calls.append(1)
        return taken_port if len(calls) == 1 else real()

    monkeypatch.setattr(demo, "_free_port", racy_free_port)
    try:
        sb = start_sandbox(root)
    finally:
        taken.close()
    assert len(calls) == 2
    assert sb.port != taken_port
    assert ssh(sb, "true").returncode == 0


def test_host_key_is_pinned(sandbox, root, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    cfg = tmp_path / "cfg_empty"
    text = sandbox.ssh_config.read_text()
    assert str(root / "known_hosts") in text
    cfg.write_text(text.replace(str(root / "known_hosts"), str(empty)))
    cfg.chmod(0o600)
    r = ssh(sandbox, "true", config=cfg)
    assert r.returncode != 0
    assert "Host key verification failed" in r.stderr
    assert empty.read_text() == ""  # not learnt either

    wrong = tmp_path / "wrong_known_hosts"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")],
        check=True,
        timeout=30,
    )
    other = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    wrong.write_text(f"[127.0.0.1]:{sandbox.port} {other}\n")
    cfg.write_text(text.replace(str(root / "known_hosts"), str(wrong)))
    r = ssh(sandbox, "true", config=cfg)
    assert r.returncode != 0
    assert "Host key verification failed" in r.stderr


def test_user_ssh_dir_untouched(root):
    before = user_ssh_snapshot()
    sb = start_sandbox(root)
    assert ssh(sb, "true").returncode == 0
    assert ssh(sb, "echo hi").stdout.strip() == "hi"
    assert stop_sandbox(root) == []
    assert user_ssh_snapshot() == before


def test_default_root_is_under_jupyter_data_dir(jupyter_data):
    sb = start_sandbox()
    try:
        assert sb.root == jupyter_data / "sshpyk" / "demo"
        assert ssh(sb, "echo $SSHPYK_DEMO").stdout.strip() == str(sb.root)
    finally:
        assert stop_sandbox() == []
    assert not sb.root.exists()


def test_refuses_symlinked_root(tmp_path, jupyter_data):
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "demo-link"
    link.symlink_to(target)
    with pytest.raises(DemoError, match="symlink"):
        start_sandbox(link)
    assert list(target.iterdir()) == []
    assert link.is_symlink()


def test_existing_root_is_made_private(tmp_path, root):
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    sb = start_sandbox(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert ssh(sb, "true").returncode == 0


# ---- issue 13: what `sshpyk demo` leaves behind, and the hints it prints ---------------------


def test_stop_removes_the_empty_parent_of_the_default_root(jupyter_data):
    sb = start_sandbox()
    parent = jupyter_data / "sshpyk"
    assert sb.root.parent == parent
    assert stop_sandbox() == []
    assert not parent.exists()  # no empty .../jupyter/sshpyk/ left behind
    assert jupyter_data.is_dir()  # and nothing above it touched


def test_stop_keeps_the_parent_when_it_holds_anything_else(jupyter_data):
    parent = jupyter_data / "sshpyk"
    parent.mkdir(parents=True)
    other = parent / "not-the-demo.txt"
    other.write_text("kept\n")
    start_sandbox()
    assert stop_sandbox() == []
    assert not (parent / "demo").exists()
    assert other.read_text() == "kept\n"


def test_stop_never_removes_the_parent_of_a_root_given_explicitly(tmp_path, jupyter_data):
    parent = tmp_path / "mine"
    parent.mkdir()
    root = parent / "demo"
    start_sandbox(root)
    assert stop_sandbox(root) == []
    assert not root.exists()
    assert parent.is_dir()  # empty now, but not ours to remove


SCRIPTS = Path(sysconfig.get_path("scripts"))
SHELL_COMMAND = (
    "import sys; from sshpyk.demo import shell_command; print(shell_command(sys.argv[1]))"
)


def shown_command(name: str, path: str, cwd: Path, venv: str | None = None) -> str:
    """What shell_command says in a process started with this PATH (and $VIRTUAL_ENV)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = path
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])  # the sshpyk under test
    if venv:
        env["VIRTUAL_ENV"] = venv
    r = subprocess.run(
        [sys.executable, "-c", SHELL_COMMAND, name],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def runs_in_a_plain_shell(command: str, cwd: Path) -> str:
    """Run a printed hint as the user would, in a shell without our environment on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"
    r = subprocess.run(
        ["sh", "-c", f"{command} --version"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, (command, r.stderr)
    return r.stdout + r.stderr


@pytest.mark.parametrize("name", ["sshpyk", "jupyter"])
def test_hints_name_the_path_when_the_cli_is_not_on_path(name):
    if sys.prefix == sys.base_prefix:
        pytest.fail("run the tests from the project's venv (./dev setup makes .venv)")
    project = SCRIPTS.parent.parent  # where ./dev runs: the hint is .venv/bin/<name>
    plain = "/usr/bin:/bin"
    assert shutil.which(name, path=plain) is None, f"a {name} outside the venv is on {plain}"
    # run from a plain shell (.venv/bin/sshpyk demo), and from ./dev demo (venv activated)
    for venv in (None, str(SCRIPTS.parent)):
        path = plain if venv is None else f"{SCRIPTS}:{plain}"
        shown = shown_command(name, path, project, venv)
        assert shown == os.path.relpath(SCRIPTS / name, project), shown
        assert "/" in shown  # a path the shell runs as such, not a name it looks up
        out = runs_in_a_plain_shell(shown, project)
        if name == "sshpyk":
            assert out.startswith("sshpyk "), out
    # from elsewhere: absolute
    assert shown_command(name, plain, Path("/")) == str(SCRIPTS / name)


def test_hints_say_the_bare_name_when_the_shell_finds_this_very_cli():
    assert shown_command("sshpyk", f"{SCRIPTS}:/usr/bin:/bin", Path("/")) == "sshpyk"


def test_hints_never_say_a_name_that_finds_another_sshpyk(tmp_path):
    # an older sshpyk earlier on PATH (e.g. 1.25 from the package index, in ~/.local/bin)
    other = tmp_path / "bin"
    other.mkdir()
    (other / "sshpyk").write_text("#!/bin/sh\necho sshpyk 1.25\n")
    (other / "sshpyk").chmod(0o755)
    shown = shown_command("sshpyk", f"{other}:{SCRIPTS}:/usr/bin:/bin", Path("/"))
    assert shown == str(SCRIPTS / "sshpyk")
