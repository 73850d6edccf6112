"""The remote wire protocol (sshpyk.remote.protocol): how programs travel, how their
messages are read, and that the remote side's copy of the wire (the prelude) agrees.

Programs run here with this machine's python and /bin/sh, as they would on a host: no ssh.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import sshpyk.remote
from sshpyk.remote import _prelude, protocol
from sshpyk.remote.protocol import (
    BUNDLED,
    CHANNELS,
    LOADER,
    MARK,
    PORT_NAMES,
    messages,
    program_stdin,
    python_command,
    read_message,
    source,
)

REMOTE = Path(sshpyk.remote.__file__).parent
# relay_wire, relay_journal and relay_hub are no programs: modules bundled into the launcher
# (tests/unit/test_relay_wire.py)
BUNDLED_MODULES = (
    "_prelude",
    "relay_wire",
    "relay_journal",
    "relay_hub",
    "nanny",
    "container",
)
NOT_PROGRAMS = ("__init__", "protocol", *BUNDLED_MODULES)
PROGRAMS = sorted(p.stem for p in REMOTE.glob("*.py") if p.stem not in NOT_PROGRAMS)


def top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                elements = target.elts if isinstance(target, ast.Tuple) else [target]
                names |= {t.id for t in elements if isinstance(t, ast.Name)}
    return names


def bundled_names(name: str) -> list[str]:
    """What ``remote/<name>.py`` imports from the prelude (in the package)."""
    tree = ast.parse((REMOTE / f"{name}.py").read_text())
    found = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 1]
    assert found[0].module == "_prelude", name
    assert {n.module for n in found} <= set(BUNDLED_MODULES), name
    return [a.name for a in found[0].names]


def test_the_programs_are_the_ones_sshpyk_sends():
    assert PROGRAMS == [
        "attach",
        "discover",
        "forward_probe",
        "inspect",
        "launcher",
        "mount",
        "running",
        "slurm_agent",
        "slurm_bridge",
    ]


# ---- the wire's names ---------------------------------------------------------------------------
def test_channels_are_one_list_on_both_sides():
    assert CHANNELS == ("shell", "iopub", "stdin", "control", "hb")
    assert _prelude.CHANNELS == CHANNELS
    assert PORT_NAMES == ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def test_the_remote_disk_layout_is_the_same_on_both_sides():
    for name in ("MARK", "RUN_ROOT", "META", "LEASE", "CONNECTION_FILE", "KERNEL_LOG"):
        assert getattr(_prelude, name) == getattr(protocol, name), name
    assert (_prelude.EXIT_SUFFIX, _prelude.MOUNT_STATE_DIR) == (
        protocol.EXIT_SUFFIX,
        protocol.MOUNT_STATE_DIR,
    )
    assert protocol.RUN_ROOT == "~/.sshpyk/run" and protocol.EXIT_SUFFIX == ".exit"


def test_commands_are_lines_of_bytes():
    assert protocol.ack_command() == b"ack\n" and protocol.ACK == "ack"
    assert protocol.signal_command(2) == b"signal 2\n"
    assert protocol.ping_command(41) == b"ping 41\n"
    with pytest.raises(ValueError):
        protocol.signal_command("2; rm")  # only a number ever goes on the wire


def test_the_package_keeps_no_second_copy_of_the_wire():
    assert not {"MARK", "program_stdin", "python_command", "messages", "source"} & set(
        vars(sshpyk.remote)
    )


# ---- how programs travel -------------------------------------------------------------------------
def test_program_stdin_frames_the_program_then_its_parameters():
    params = {"action": "list", "key": "s3cr\u00e9t"}
    data = program_stdin("running", params)
    length, rest = data.split(b"\n", 1)
    program, tail = rest[: int(length)], rest[int(length) :].decode()
    assert zlib.decompress(program).decode() == source("running")
    assert len(program) < len(source("running")) / 2  # compressed: fewer round trips
    assert tail.endswith("\n") and json.loads(tail) == params
    assert tail.count("\n") == 1  # one JSON line: the program reads exactly that


@pytest.mark.parametrize("name", PROGRAMS)
def test_every_program_is_ascii_and_compiles_for_the_host(name):
    sent = source(name)
    assert sent.isascii(), name  # the loader counts characters as bytes
    tree = ast.parse(sent, feature_version=(3, 8))  # the host's python may be 3.8
    compile(sent, f"sshpyk-{name}", "exec")
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert not relative and "# sshpyk: bundled" not in sent, name
    # the prelude first, once
    assert sent.startswith((REMOTE / "_prelude.py").read_text())
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert defined.count("emit") == 1 and defined.count("host_identity") == 1, name


@pytest.mark.parametrize("name", PROGRAMS)
def test_no_program_shadows_what_the_prelude_defines(name):
    """Prepended, the prelude shares the program's globals: a program defining a name of
    the prelude would silently change what the prelude's own functions use."""
    prelude = top_level_names(ast.parse((REMOTE / "_prelude.py").read_text()))
    own = top_level_names(ast.parse((REMOTE / f"{name}.py").read_text()))
    assert not own & prelude, name
    assert set(bundled_names(name)) <= prelude, name


@pytest.mark.parametrize("name", PROGRAMS)
def test_no_two_bundled_modules_define_one_name(name):
    """Bundled, the modules of a program share one namespace: two that define one name
    would leave each the later one's (whatever the first module's own code meant)."""
    modules = BUNDLED.findall(source_with_marks(name))
    seen: dict[str, str] = {}
    for module in [*dict.fromkeys(modules), name]:
        for defined in top_level_names(ast.parse((REMOTE / f"{module}.py").read_text())):
            assert defined not in seen, f"{defined}: {seen.get(defined)} and {module} ({name})"
            seen[defined] = module


def source_with_marks(name: str) -> str:
    """The modules ``name`` bundles, transitively, with their marks (``source`` drops them)."""
    text = (REMOTE / f"{name}.py").read_text()
    found = [m for m in BUNDLED.findall(text) if m != "_prelude"]
    return text + "".join(source_with_marks(m) for m in found)


def test_the_bundled_mark_is_removed_in_both_forms():
    one = "import os\nfrom ._prelude import emit, fail  # sshpyk: bundled\nx = 1\n"
    many = "import os\nfrom ._prelude import (  # sshpyk: bundled\n    emit,\n    fail,\n)\nx = 1\n"
    assert BUNDLED.sub("", one) == BUNDLED.sub("", many) == "import os\nx = 1\n"
    assert BUNDLED.sub("", "from .other import x\n") == "from .other import x\n"


def test_the_loader_runs_a_program_from_stdin(tmp_path):
    """The loader with this python: the program, then its parameters, then whatever the
    session sends after them (here nothing: the probe ends at once)."""
    proc = subprocess.run(
        [sys.executable, "-c", LOADER],
        input=program_stdin("forward_probe", {"transport": "tcp", "timeout": 0}),
        capture_output=True,
        timeout=30,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},  # where it keeps the program
    )
    assert proc.returncode == 0, proc.stderr
    (said,) = messages(proc.stdout.decode())
    assert isinstance(said["probe"], int) and said["probe"] > 0


def test_python_command_is_one_printable_line():
    for command in (
        python_command("~/envs/my env"),
        python_command("/opt/env", "mount", {"remote_path": "~/it's here"}),
    ):
        assert command.isascii() and command.isprintable(), command[:200]
        assert command.startswith("exec /bin/sh -c ")
    assert "sshpyk-mount" in python_command("/opt/env", "mount", {})  # readable in ps


def test_python_command_runs_the_program_through_sh(tmp_path):
    """Through a login shell as sshd would: the shell's pid first, then the program."""
    proc = subprocess.run(
        ["/bin/sh", "-c", python_command(sys.prefix)],
        input=program_stdin("running", {"action": "list"}),
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        timeout=30,
        check=False,
    )
    first, answer = messages(proc.stdout.decode())
    assert isinstance(first["shell_pid"], int)
    assert answer["kernels"] == [] and answer["reaped"] == []


@pytest.mark.parametrize("make", ["nothing", "empty_dir"])
def test_python_command_says_what_is_missing(tmp_path, make):
    prefix = tmp_path / "env"
    if make == "empty_dir":
        prefix.mkdir()
    proc = subprocess.run(
        ["/bin/sh", "-c", python_command(str(prefix))],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )
    said = messages(proc.stdout.decode())
    want = "prefix_missing" if make == "nothing" else "python_missing"
    assert "shell_pid" in said[0] and said[1] == {"error": want}


def test_an_argv_program_reports_on_stderr_only(tmp_path):
    params = {"remote_path": str(tmp_path / "mnt"), "sshfs": "/nonexistent/sshfs"}
    proc = subprocess.run(
        ["/bin/sh", "-c", python_command(sys.prefix, "mount", params)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.stdout == b""  # stdout is the SFTP stream: nothing else goes there
    said = messages(proc.stderr.decode())
    assert "shell_pid" in said[0] and said[-1]["error"] == "sshfs_missing"


# ---- reading what programs say -------------------------------------------------------------------
def test_messages_skips_noise():
    text = (
        "Welcome to the cluster!\n"
        f'{MARK}{{"shell_pid": 12}}\n'
        "SSHPYK-ish but not a message\n"
        f'{MARK}{{"ready": true, "ports": [1, 2, 3, 4, 5]}}\r\n'
        f"{MARK}[1, 2]\n"
    )
    assert messages(text) == [{"shell_pid": 12}, {"ready": True, "ports": [1, 2, 3, 4, 5]}]


def test_read_message_skips_noise_and_returns_none_at_eof():
    async def go():
        stream = asyncio.StreamReader()
        noise: list[str] = []
        stream.feed_data(b"motd: be nice\n")
        stream.feed_data(f'{MARK}{{"shell_pid": 7}}\n'.encode())
        stream.feed_data(b"\xff\xfe not utf-8\n")
        stream.feed_data(f'{MARK}{{"error": "python_missing"}}\n'.encode())
        stream.feed_data(b"a last line without a newline")
        stream.feed_eof()
        got = [await read_message(stream, on_noise=noise.append) for _ in range(3)]
        return got, noise, await read_message(stream)

    got, noise, after = asyncio.run(go())
    assert got == [{"shell_pid": 7}, {"error": "python_missing"}, None]
    assert noise[0] == "motd: be nice" and noise[-1] == "a last line without a newline"
    assert len(noise) == 3 and after is None


def test_read_message_waits_for_a_whole_line():
    async def go():
        stream = asyncio.StreamReader()
        pending = asyncio.ensure_future(read_message(stream))
        stream.feed_data(f'{MARK}{{"po'.encode())
        await asyncio.sleep(0.01)
        assert not pending.done()
        stream.feed_data(b'ng": 3}\n')
        return await asyncio.wait_for(pending, 5)

    assert asyncio.run(go()) == {"pong": 3}


# ---- the words for a remote error kind (sshpyk.errors.remote_failure) ------------------------
def test_remote_failure_words_each_kind():
    from sshpyk.errors import remote_failure

    def say(reply, **kw):
        return remote_failure(reply, alias="gpu", prefix="/opt/env", kernel_name="python3", **kw)

    assert say({"error": "prefix_missing"}) == (
        "remote python prefix '/opt/env' does not exist on 'gpu'"
    )
    assert say({"error": "python_missing"}) == (
        "/opt/env/bin/python (or python3) on 'gpu' is missing or not executable"
    )
    assert say({"error": "kernelspec_not_found", "available": ["ir", "julia"]}) == (
        "remote kernelspec 'python3' not found in '/opt/env' on 'gpu'; available: ir, julia"
    )
    assert "pip install jupyter_client" in say({"error": "jupyter_client_missing"})
    assert say({"error": "sshfs_missing", "message": "sshfs not found on this host (PATH)"}) == (
        "sshfs not found on this host (PATH): install sshfs on gpu (Debian: apt-get install sshfs)"
    )
    died = {"error": "kernel_died", "message": "the kernel exited", "log": "x" * 2000 + "boom"}
    said = say(died)
    assert said.startswith("the kernel exited (on 'gpu'); kernel log:\n") and said.endswith("boom")
    assert len(said) < 1600  # the log's tail only
    assert say({"error": "mount_point_busy", "message": "m"}, otherwise="cannot mount") == (
        "cannot mount"
    )
