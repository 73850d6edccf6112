"""Programs sshpyk runs on the remote host with the remote environment's python.

They travel over ssh stdin (never argv: the launcher's parameters hold the HMAC key) and
answer with ``SSHPYK <json>`` lines, so noise from the user's shell start-up files is
ignored.  The remote host needs only python and jupyter_client, never sshpyk.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from importlib.resources import files

from ..transport import remote_path_expr

MARK = "SSHPYK "
# Runs the program sent on stdin: its length, a newline, the program.
LOADER = (
    "import sys;n=int(sys.stdin.readline());exec(compile(sys.stdin.read(n),'sshpyk-remote','exec'))"
)


# A program's line ``from .identity import ...  # sshpyk: bundled`` is replaced by the text of
# remote/identity.py: the programs share that code in the package, and each runs alone on
# the host, where sshpyk is not installed.
BUNDLED = re.compile(r"^from \.(\w+) import [\w, ]+  # sshpyk: bundled$", re.M)


def source(name: str) -> str:
    """The text of ``remote/<name>.py`` as it runs on the host (bundled imports inlined)."""
    src = files(__name__).joinpath(f"{name}.py").read_text()
    return BUNDLED.sub(lambda m: source(m.group(1)), src)


def program_stdin(name: str, params: dict) -> bytes:
    """What to write to the session: the program ``remote/<name>.py``, then its parameters."""
    src = source(name)
    assert src.isascii()  # the loader counts characters; keep them one byte each
    return f"{len(src)}\n{src}{json.dumps(params)}\n".encode()


def python_command(prefix: str, program: str | None = None, params: dict | None = None) -> str:
    """The remote shell command that runs a program with ``prefix``'s python.

    By default the program comes on stdin (see ``program_stdin``) and reports on stdout.
    With ``program``, it and its ``params`` go in argv and every report goes to stderr: for
    programs whose stdin and stdout are a data stream.  argv is visible to every user of
    the host, so such params must never hold a secret.

    The command is one line of printable ASCII, which every login shell sshd may hand it to
    (sh, bash, zsh, fish, csh, tcsh) parses alike: csh/tcsh reject a newline inside quotes,
    so the program travels base64-encoded (its name stays readable in ``ps``)."""
    missing_prefix = shlex.quote(MARK + json.dumps({"error": "prefix_missing"}))
    missing_python = shlex.quote(MARK + json.dumps({"error": "python_missing"}))
    p = remote_path_expr(prefix)
    if program is None:
        out = ""
        run = f"exec {p}/bin/python -c {shlex.quote(LOADER)}"
    else:
        out = " >&2"
        code = base64.b64encode(source(program).encode()).decode()
        # double quotes inside: no '"'"' in the shell quoting around it
        loader = f'import base64;exec(compile(base64.b64decode("{code}"),"sshpyk-{program}",'
        loader += '"exec"))'
        args = f"{shlex.quote(loader)} {shlex.quote(json.dumps(params or {}))}"
        run = f"exec {p}/bin/python -c {args}"
    # $$ stays the program's pid across exec: the handle to kill it should it hang
    script = (
        f"printf '{MARK}{{\"shell_pid\": %s}}\\n' $${out}; "
        f"if [ ! -d {p} ]; then echo {missing_prefix}{out}; exit 0; fi; "
        f"if [ ! -x {p}/bin/python ]; then echo {missing_python}{out}; exit 0; fi; "
        f"{run}"
    )
    # through /bin/sh whatever the user's login shell is (csh, fish, ...)
    command = f"exec /bin/sh -c {shlex.quote(script)}"
    assert "\n" not in command and "\r" not in command, "one line, for every shell"
    return command


def messages(text: str) -> list[dict]:
    """The ``SSHPYK`` messages in a program's whole output."""
    return [json.loads(line[len(MARK) :]) for line in text.splitlines() if line.startswith(MARK)]
