"""A kernelspec's ``prelude`` and ``env`` (issue #18): the shell ``python_command`` runs
before a program, here with the local python in place of the remote one, and the model's
rules for both fields."""

from __future__ import annotations

import base64
import subprocess
import sys
import zlib

import pytest

from sshpyk.errors import remote_failure
from sshpyk.model import InvalidField, validate
from sshpyk.remote.protocol import messages, program_stdin, python_command

PREFIX = sys.prefix  # this python stands in for the remote environment's


def run(command: str, stdin: bytes) -> subprocess.CompletedProcess:
    # whatever the login shell: sshd hands the one-line command to it
    return subprocess.run(["/bin/sh", "-c", command], input=stdin, capture_output=True, timeout=60)


BASE = {
    "kernel_name": "k",
    "display_name": "K",
    "language": "python",
    "ssh_host_alias": "h",
    "remote_python_prefix": "/opt/p",
    "remote_kernel_name": "python3",
}


def test_what_the_prelude_sets_is_the_programs_environment(tmp_path):
    prelude = [
        "export SSHPYK_T1=from-prelude  # a trailing comment",
        f"cd {tmp_path} && export SSHPYK_T2=$(pwd)",
    ]
    command = python_command(PREFIX, prelude=prelude)
    assert "\n" not in command  # one line, for every login shell
    out = run(command, program_stdin("inspect", {})).stdout.decode()
    found = messages(out)
    assert found[0].keys() == {"shell_pid"} and "python" in found[1], out
    # the same shell: its environment reaches the program (a program of our own, framed
    # as the loader reads one: its length, then it zlib-compressed)
    code = "import os; print(os.environ['SSHPYK_T1'], os.environ['SSHPYK_T2'], os.getcwd())"
    data = zlib.compress(code.encode())
    res = run(command, f"{len(data)}\n".encode() + data)
    assert res.stdout.decode().split()[-3:] == ["from-prelude", str(tmp_path), str(tmp_path)]


def test_the_first_failing_line_stops_the_start_with_its_own_words():
    prelude = ["true", "echo to-stdout; echo to-stderr >&2; exit 3", "touch /nonexistent/x"]
    out = run(python_command(PREFIX, prelude=prelude), program_stdin("inspect", {}))
    reply = messages(out.stdout.decode())[1]
    assert reply["error"] == "prelude_failed" and reply["line"] == 2 and reply["rc"] == 3
    assert base64.b64decode(reply["output"]) == b"to-stdout\nto-stderr\n"
    text = remote_failure(reply, alias="hpc", prefix=PREFIX)
    assert "prelude failed on 'hpc': line 2 ended with exit status 3" in text
    assert "to-stderr" in text


def test_the_prelude_never_reads_the_programs_stdin():
    out = run(python_command(PREFIX, prelude=["cat >/dev/null"]), program_stdin("inspect", {}))
    assert "python" in messages(out.stdout.decode())[1]


def test_env_and_prelude_in_the_model():
    m = validate({**BASE, "env": {"OMP_NUM_THREADS": "4"}, "prelude": ["module load x"]})
    assert m["env"] == {"OMP_NUM_THREADS": "4"} and m["prelude"] == ["module load x"]
    assert validate(BASE)["env"] == {} and validate(BASE)["prelude"] == []
    for bad, field in (
        ({"env": {"1BAD": "x"}}, "env.1BAD"),
        ({"env": {"A": "line\nbreak"}}, "env.A"),
        ({"env": {"A": 1}}, "env.A"),
        ({"prelude": ["ok", "two\nlines"]}, "prelude[1]"),
        ({"prelude": ["  "]}, "prelude[0]"),
        ({"env": ["A=1"]}, "env"),
    ):
        with pytest.raises(InvalidField) as e:
            validate({**BASE, **bad})
        assert e.value.field == field, (bad, e.value)
