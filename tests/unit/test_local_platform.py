"""The local side beyond Linux (issue #19), as pure logic: which TCP options each platform
gets (and the Linux path on a real socket), socket paths that fit whatever the runtime
directory is, the open-files limit, and native Windows refused with one message."""

from __future__ import annotations

import logging
import os
import resource
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from sshpyk import control_dir as cd
from sshpyk import local_platform, tcp_connect
from sshpyk.cli import main as cli_main
from sshpyk.login.bridge import Bridge

# ---- link tuning per platform ------------------------------------------------------------


def names(platform: str, release: str = "", timeout: float = 30) -> list[str]:
    return [name for _, name, _ in tcp_connect.plan(platform, release, timeout)]


def test_every_platform_gets_nodelay_and_keepalive():
    for platform in ("linux", "darwin", "freebsd14", "sunos5"):
        assert names(platform)[:2] == ["TCP_NODELAY", "SO_KEEPALIVE"]
    assert names("freebsd14") == ["TCP_NODELAY", "SO_KEEPALIVE"]  # nothing we have not tried


@pytest.mark.parametrize(
    ("release", "capped"),
    [
        ("6.15.0", True),
        ("6.18.44-fc-v657", True),
        ("7.0.1", True),
        ("6.14.11-300.fc42.x86_64", False),
        ("6.12.48+deb13-amd64", False),
        ("5.10.0-35-amd64", False),
        ("4.19.0", False),
        ("weird", True),  # unreadable: tried, and skipped if the kernel refuses it
    ],
)
def test_linux_gets_the_user_timeout_and_the_rto_cap_from_6_15(release, capped):
    got = names("linux", release)
    assert got[-1] == "TCP_USER_TIMEOUT"
    assert ("TCP_RTO_MAX_MS" in got) is capped
    values = {n: v for _, n, v in tcp_connect.plan("linux", release, 30)}
    assert values["TCP_USER_TIMEOUT"] == 600_000  # ms: the 10 minutes of ServerAlive
    if capped:
        assert values["TCP_RTO_MAX_MS"] == 1000


def test_macos_gets_keepalive_timing_drop_time_and_connection_timeout():
    plan = {n: (level, v) for level, n, v in tcp_connect.plan("darwin", "24.1.0", 12.4)}
    tcp = socket.IPPROTO_TCP
    assert plan == {
        "TCP_NODELAY": (tcp, 1),
        "SO_KEEPALIVE": (socket.SOL_SOCKET, 1),
        "TCP_KEEPALIVE": (tcp, 30),
        "TCP_KEEPINTVL": (tcp, 10),
        "TCP_KEEPCNT": (tcp, 60),
        "TCP_RXT_CONNDROPTIME": (tcp, 600),
        "TCP_CONNECTIONTIMEOUT": (tcp, 12),  # seconds: ssh's ConnectTimeout
    }
    # a silent peer is dropped after about the same 10 minutes as everywhere else
    assert 30 + 10 * 60 == 630
    assert tcp_connect.plan("darwin", "", 0.2)[-1][2] == 1  # never 0 (which means "none")


def test_option_numbers_fall_back_to_the_system_headers(monkeypatch):
    for name in ("TCP_KEEPALIVE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_RTO_MAX_MS"):
        monkeypatch.delattr(socket, name, raising=False)
    assert tcp_connect.option_number("TCP_KEEPALIVE", "darwin") == 0x10
    assert tcp_connect.option_number("TCP_KEEPINTVL", "darwin") == 0x101
    assert tcp_connect.option_number("TCP_KEEPCNT", "darwin") == 0x102
    assert tcp_connect.option_number("TCP_CONNECTIONTIMEOUT", "darwin") == 0x20
    assert tcp_connect.option_number("TCP_RXT_CONNDROPTIME", "darwin") == 0x80
    assert tcp_connect.option_number("TCP_RTO_MAX_MS", "linux") == 44
    assert tcp_connect.option_number("TCP_RXT_CONNDROPTIME", "linux") is None
    assert tcp_connect.option_number("TCP_KEEPCNT", "sunos5") is None
    # Python's own name wins where it has one
    assert tcp_connect.option_number("TCP_NODELAY", "darwin") == socket.TCP_NODELAY


class RefusingSocket:
    """A socket whose system knows none of the options: what an old kernel does."""

    def __init__(self):
        self.tried: list[int] = []

    def setsockopt(self, level, option, value):
        self.tried.append(option)
        raise OSError(92, "Protocol not available")


def test_a_refused_option_never_fails_the_connection():
    s = RefusingSocket()
    assert tcp_connect.tune(s, "darwin", "", 30) == []  # type: ignore[arg-type]
    assert len(s.tried) == len(tcp_connect.plan("darwin", "", 30))  # each tried on its own


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux path")
def test_the_linux_path_on_a_real_socket():
    tcp = socket.IPPROTO_TCP
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        done = tcp_connect.tune(s, sys.platform, os.uname().release, 30)
        assert s.getsockopt(tcp, socket.TCP_NODELAY) == 1
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert s.getsockopt(tcp, socket.TCP_USER_TIMEOUT) == 600_000
        version = tcp_connect.kernel_version(os.uname().release)
        if version is not None and version >= (6, 15):
            assert "TCP_RTO_MAX_MS" in done
            assert s.getsockopt(tcp, tcp_connect.option_number("TCP_RTO_MAX_MS", "linux")) == 1000
        else:
            assert "TCP_RTO_MAX_MS" not in done
        assert done[:2] == ["TCP_NODELAY", "SO_KEEPALIVE"] and "TCP_USER_TIMEOUT" in done


def test_connect_tunes_before_it_connects_and_reports_refusals_as_ssh_does(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        s = tcp_connect.connect("127.0.0.1", port, 5)
        with s:
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert s.gettimeout() is None  # ssh gets a blocking socket
    log = tmp_path / "log"
    assert tcp_connect.main(["127.0.0.1", str(port), "5", str(log)]) == 255  # closed now
    assert log.read_text() == f"ssh: connect to host 127.0.0.1 port {port}: Connection refused\n"


# ---- short socket paths ------------------------------------------------------------------

LONG = "y" * 180
MACOS_TMPDIR = "/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/"  # 49 bytes


def longest_socket(directory: Path) -> int:
    master = directory / f"cm-{'f' * 16}-99"
    login = Bridge(directory).path
    return max(len(os.fsencode(str(master))) + 17, len(os.fsencode(str(login))))


@pytest.fixture
def made(monkeypatch, tmp_path):
    """Directories control_dir made outside tmp_path (mkdtemp in /tmp) are removed after."""
    monkeypatch.setattr(cd, "_OWN_DIR", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TMPDIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    dirs: list[Path] = []
    yield dirs
    for d in dirs:
        if tmp_path not in d.parents:
            shutil.rmtree(d, ignore_errors=True)


def check_private(d: Path) -> None:
    st = d.lstat()
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
    assert st.st_mode & 0o777 == 0o700


@pytest.mark.parametrize("platform", ["linux", "darwin"])
@pytest.mark.parametrize("runtime", ["", "short", "long"])
@pytest.mark.parametrize("tmpdir", ["", "macos", "long"])
def test_every_socket_fits_whatever_the_runtime_dir(
    made, monkeypatch, tmp_path, platform, runtime, tmpdir
):
    monkeypatch.setattr(cd, "sys", SimpleNamespace(platform=platform))
    short = Path(f"/tmp/spk-rt-{os.getpid()}")  # removed below
    roots = {"short": short, "long": tmp_path / LONG}
    if runtime:
        roots[runtime].mkdir(mode=0o700, exist_ok=True)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(roots[runtime]))
    if tmpdir == "long":
        (tmp_path / "t" / LONG).mkdir(parents=True)
        monkeypatch.setenv("TMPDIR", str(tmp_path / "t" / LONG))
    elif tmpdir == "macos":
        monkeypatch.setenv("TMPDIR", MACOS_TMPDIR)  # not there: not used
    try:
        d = cd.control_dir()
        made.append(d)
        check_private(d)
        assert longest_socket(d) <= cd.SOCKET_PATH_MAX
        assert len(str(d)) <= cd.MAX_CONTROL_DIR
        if runtime == "short":
            assert d == short / "sshpyk"
        else:
            # mkdtemp's: a name no other local user could have made first
            assert d.name.startswith(f"sshpyk-{os.getuid()}-") and len(d.name) > 8
            assert d.parent == Path("/tmp")
    finally:
        shutil.rmtree(short, ignore_errors=True)


def test_macos_uses_its_per_user_tmpdir_when_short_enough(made, monkeypatch, tmp_path):
    monkeypatch.setattr(cd, "sys", SimpleNamespace(platform="darwin"))
    tmpdir = Path(f"/tmp/spk-T-{os.getpid()}")  # as short as macOS's (49 bytes)
    tmpdir.mkdir(mode=0o700)
    try:
        monkeypatch.setenv("TMPDIR", str(tmpdir) + "/")
        d = cd.control_dir()
        assert d == tmpdir / "sshpyk" and longest_socket(d) <= cd.SOCKET_PATH_MAX
        check_private(d)
    finally:
        shutil.rmtree(tmpdir)


def test_a_tmpdir_too_long_for_a_big_uid_falls_back_to_tmp(monkeypatch):
    # 39 bytes of TMPDIR passed the old check, but with a 10-digit uid mkdtemp's directory
    # (/sshpyk-<uid>-XXXXXXXX) would not fit: /tmp instead
    monkeypatch.setattr(cd.os, "getuid", lambda: 4_000_000_000)
    monkeypatch.setenv("TMPDIR", "/" + "t" * 38)
    assert cd._tmp_base() == "/tmp"
    monkeypatch.setattr(cd.os, "getuid", lambda: 501)
    assert cd._tmp_base() == "/" + "t" * 38
    # bytes count, not characters: twenty "é" are 40 bytes
    monkeypatch.setenv("TMPDIR", "/" + "é" * 20)
    assert cd._tmp_base() == "/tmp"


def test_without_a_writable_home_the_dir_is_private_and_per_process(made, monkeypatch, tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "ro" / "cache"))
    if os.geteuid() == 0:  # root writes anywhere: make the pointer's directory fail instead
        monkeypatch.setenv("XDG_CACHE_HOME", "/proc/version/cache")
    d = cd.control_dir()
    made.append(d)
    check_private(d)
    assert d.name.startswith(f"sshpyk-{os.getuid()}-") and longest_socket(d) <= 100
    assert cd.control_dir() == d


def test_the_budget_adds_up():
    assert cd.MAX_CONTROL_DIR + 1 + cd.LONGEST_SOCKET_NAME == cd.SOCKET_PATH_MAX == 100
    assert cd.SOCKET_PATH_MAX <= 104  # macOS's sun_path


# ---- open files ----------------------------------------------------------------------------

INF = -1


@pytest.mark.parametrize(
    ("soft", "hard", "want"),
    [
        (256, INF, 8192),  # macOS's default: raised
        (256, 10240, 8192),
        (256, 1024, 1024),  # never above the hard limit
        (1024, 524288, 8192),  # Linux's usual default
        (20000, 20000, 20000),  # never lowered
        (INF, INF, INF),
    ],
)
def test_the_open_files_target(soft, hard, want):
    assert local_platform.open_files_target(soft, hard, INF) == want


def test_the_open_files_limit_is_raised_in_a_real_process():
    # in a child, so this test process keeps its own limit
    code = textwrap.dedent("""
        import resource
        from sshpyk.local_platform import raise_open_files_limit
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    assert out == [str(want), str(want)]


# ---- native Windows --------------------------------------------------------------------------


def test_native_windows_is_refused_with_wsl2_named():
    with pytest.raises(local_platform.UnsupportedPlatform) as e:
        local_platform.check_platform("win32")
    assert "WSL2" in str(e.value) and e.value.kind == "unsupported_platform"
    for platform in ("linux", "darwin", "cygwin", "freebsd14"):
        local_platform.check_platform(platform)  # not refused (cygwin has unix sockets)


def test_the_cli_refuses_native_windows_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(local_platform.sys, "platform", "win32")
    assert cli_main(["list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sshpyk: native Windows is not supported")
    assert "Run JupyterLab inside WSL2" in err


def test_a_kernels_launch_refuses_native_windows(monkeypatch):
    from jupyter_client.kernelspec import KernelSpec

    from sshpyk.kernel.provisioner import SSHKernelProvisioner

    monkeypatch.setattr(local_platform.sys, "platform", "win32")
    spec = KernelSpec(display_name="ssh", argv=[], language="python")
    with pytest.raises(local_platform.UnsupportedPlatform, match="WSL2"):
        SSHKernelProvisioner(
            kernel_id="k1",
            kernel_spec=spec,
            parent=None,
            ssh_host_alias="h",
            remote_python_prefix="/p",
            remote_kernel_name="python3",
        )


BLOCK_POSIX = textwrap.dedent("""
    import builtins, sys
    POSIX_ONLY = {"fcntl", "pwd", "grp", "resource", "termios", "tty", "pty", "posix"}
    real = builtins.__import__

    def windows_like(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get("__name__", "")
        if level == 0 and name.split(".")[0] in POSIX_ONLY and importer.startswith("sshpyk"):
            raise ModuleNotFoundError(f"No module named {name!r} (imported by {importer})")
        return real(name, globals, locals, fromlist, level)

    builtins.__import__ = windows_like
    import sshpyk.cli, sshpyk.kernel.provisioner, sshpyk.app
    sys.platform = "win32"
    sys.exit(sshpyk.cli.main(["list"]))
""")


def test_sshpyk_imports_without_posix_only_modules_so_windows_sees_the_refusal():
    """What native Windows would do on the way to the check: an sshpyk module importing
    ``fcntl``/``pwd``/... at module level fails here (as it would there) before the CLI could
    say why; the refusal must be what is printed."""
    r = subprocess.run([sys.executable, "-c", BLOCK_POSIX], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("sshpyk: native Windows is not supported") and "WSL2" in r.stderr


def test_a_limit_that_cannot_be_raised_is_kept_and_said():
    code = textwrap.dedent("""
        import logging, resource
        from sshpyk.local_platform import raise_open_files_limit
        logging.basicConfig()
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))  # a hard limit of 200
        print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["200", "(200,", "200)"]
    assert "only 200 open files allowed (ulimit -n): about 3 kernels fit at once" in r.stderr


def test_the_program_hands_ssh_a_tuned_connected_socket(tmp_path):
    """As ssh runs it (``ProxyUseFdpass``, ``python -I -S``): the connected socket comes
    back over the unix socket that is its stdout, with the options already set."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    log = tmp_path / "log"
    with socket.create_server(("127.0.0.1", 0)) as server, ours, theirs:
        port = server.getsockname()[1]
        argv = [sys.executable, "-I", "-S", tcp_connect.__file__, "127.0.0.1", str(port), "5"]
        rc = subprocess.run([*argv, str(log)], stdout=theirs, timeout=30).returncode
        assert rc == 0 and not log.exists()
        _, fds, _, _ = socket.recv_fds(ours, 1, 1)
        with socket.socket(fileno=fds[0]) as passed:
            peer, _ = server.accept()
            with peer:
                assert passed.getpeername() == peer.getsockname()
                assert passed.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
                assert passed.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1


def test_the_server_extension_on_native_windows_says_why_and_adds_nothing(monkeypatch, caplog):
    from sshpyk import _load_jupyter_server_extension

    monkeypatch.setattr(local_platform.sys, "platform", "win32")
    web_app = SimpleNamespace(settings={}, add_handlers=lambda *a: pytest.fail("routes added"))
    server = SimpleNamespace(web_app=web_app, log=logging.getLogger("test-server-app"))
    with caplog.at_level(logging.ERROR, "test-server-app"):
        _load_jupyter_server_extension(server)  # the server runs on
    assert web_app.settings == {}
    assert [r.getMessage() for r in caplog.records] == [f"sshpyk: {local_platform.WINDOWS_MESSAGE}"]
