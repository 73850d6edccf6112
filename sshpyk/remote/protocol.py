"""The remote wire protocol: how sshpyk talks to the programs it runs on a remote host.

The programs (the other modules of ``sshpyk.remote``) run with the remote environment's
python (>= 3.8, stdlib + jupyter_client: sshpyk is never installed there), each alone.

How a program travels
---------------------
``python_command(prefix)`` is the one-line shell command for the ssh session (printable
ASCII, run through ``/bin/sh`` whatever the login shell: sh, bash, zsh, fish, csh, tcsh).
It first prints ``SSHPYK {"shell_pid": N}`` (the pid the program keeps across ``exec``: the
handle to kill it should it hang), answers ``{"error": "prefix_missing"}`` or
``{"error": "python_missing"}`` when the environment is not there, else runs ``LOADER``
with the prefix's python.  The loader reads one line with a length, then that many bytes:
the program, zlib-compressed (``program_stdin``), which then reads its parameters, one JSON
line.
Parameters travel on stdin, never in argv (argv is visible to every user of the host, and
the launcher's parameters hold the kernel's HMAC key).  What is sent is ``source(name)``:
``remote/_prelude.py`` (``MARK``, ``emit``, ``fail``, the run-dir layout, the host and
process identity, ...), then the program, whose ``from ._prelude import ...  # sshpyk:
bundled`` line (``BUNDLED``, there for linters and tests) is dropped; the modules it imports
the same way (``nanny``, ``relay_hub``, ``relay_wire``, ...) go between the two, each after
those it imports so itself.

``python_command(prefix, program, params)`` is the other way, for a program whose stdin and
stdout are a data stream (``mount``: the SFTP stream): the program travels base64-encoded
in argv (its name readable in ``ps``), its parameters as argv[1] (so never a secret), and
every report goes to stderr.

Messages
--------
Programs answer with lines ``SSHPYK <json>`` (``MARK``); any other line (the user's shell
start-up files, ssh's own words) is ignored.  ``read_message`` is the one local reader of a
stream, ``messages`` the one parser of a whole output.  Keys: ``shell_pid``; ``error``
(a kind, with ``message`` and details; ``sshpyk.errors.remote_failure`` words it);
``ready``, ``pong``, ``exit`` (launcher); ``attached``, ``pong``, ``exit`` (attach);
``kernels``, ``reaped``, ``host``, ``outcome``, ``hostname`` (running); ``mounted``,
``expired``, ``log``, ``replaced``, ``exited`` (mount); ``probe`` (forward_probe); inspect
answers one dict describing the environment.

Commands
--------
The local side writes lines to the session's stdin after the parameters: ``ack``
(``ACK``: the launch is taken over), ``signal N`` (``signal_command``: signal the kernel's
process group), ``ping N`` (``ping_command``: answered with ``{"pong": N}``; the local side
times the link with it).  Unknown lines are ignored.

The programs
------------
``launcher``: parameters ``kernel_name``, ``kernel_id`` (the run dir's name), ``key``,
``signature_scheme``, ``transport`` (tcp or ipc), ``launch_timeout``, ``lease_timeout``,
``kernel_uuid``, ``kernelspec``, ``env``, ``cwd`` (with ``cwd_else`` and ``cwd_strict``: see
sshpyk/remote_cwd.py); it picks the kernel's ports (or sockets)
anew at every launch, restarts included.  It finds the kernelspec, writes the connection
file, starts the kernel and answers ``{"ready": true, pid, pgid, ip, ports, transport, rundir,
hostname, host, python}`` or ``{"error": kind, "message": ...}``.  Until ``ack``, EOF on
stdin means the launch was abandoned (the kernel is killed); after ``ack`` the launcher
stays as the kernel's nanny: it applies ``signal N``, answers ``ping N`` and reports
``{"exit": rc}`` when the kernel ends.  EOF then means sshpyk lost touch: the kernel keeps
running under its lease.  With ``channels: relay`` (parameters ``channels``,
``journal_limit``) the kernel listens on ipc only, ``ready`` names the hub's socket
(``relay``), and after ``ack`` the session carries the relay's frames both ways
(``relay_wire``: pings, signals and the exit report are frames too).

``attach``: a later monitor for a running kernel (``{"rundir": ..., "drop_stale": bool}``):
``{"attached": meta}``, or ``{"error": "gone", "exit": rc}`` / ``"elsewhere"`` /
``"unverified"`` / ``"bad_rundir"``; then like the nanny (``signal``, ``ping``, ``exit``),
but EOF only detaches.  For a relay kernel it connects the session to the nanny's hub
(the frames again, resumed where the last link stopped).

``running``: lists, kills, signals and reaps the kernels of a host (``{"action":
"list"|"reap"|"kill"|"signal", ...}``), one answer.  ``inspect``: the environment (python,
jupyter_client, kernelspecs, sshfs, mount points), one answer.  ``forward_probe``: a
listener for the port-forwarding check.  ``mount``: one SSHFS mount (argv, stderr).

Slurm kernels (``kernel/slurm.py``): ``slurm_agent`` is a job's batch step (argv
``{"job", "first_grace", "idle_grace"}``; the job script holds nothing else); it listens on
a unix socket in a 0700 dir on the node's own disk, recorded in ``JOBS_ROOT/<job>.json``
(``~/.sshpyk/jobs``).  ``slurm_bridge`` runs in each ``srun --overlap`` step (argv
``{"job", "command", "wait"}``): it passes the step's stdin, stdout and stderr to the agent
(SCM_RIGHTS), which runs ``command`` (the usual launcher/attach/running session) with
them inside the batch step, and ends with that command's status; an ``{"error":
"slurm_agent"}`` answer when the job has no agent on this node.  The launcher adds
``slurm_job`` to ``ready`` and ``meta.json``; ``local_sockets`` puts the kernel's ipc
sockets on the node's disk.

Channels
--------
``CHANNELS`` in this order everywhere: the ``ports`` of ``ready`` and of ``meta.json``, the
connection file's ``<channel>_port`` keys (``PORT_NAMES``), the local forwards.  With the
ipc transport a channel's endpoint is ``<ip>-<n>``, n = 1..5 in this order.

On the remote disk
------------------
``RUN_ROOT`` (``~/.sshpyk/run``, 0700) holds one run dir per kernel launch,
``<RUN_ROOT>/<id>/`` with ``meta.json`` (the launch facts, the host's identity and each
process with its start time: ``$HOME`` may be shared by several hosts and pids are reused,
so nothing is signalled or removed unless all of them match), ``lease`` (its mtime is
renewed while a monitor is attached; once older than the kernel's ``lease_timeout`` the
nanny ends the kernel, so nothing is orphaned forever), ``connection.json`` (0600, holds
the key) and ``kernel.log`` (the kernel's output).  ``<rundir>.exit`` holds a detached
kernel's exit code for a later ``attach``.  With ipc, the sockets live in the run dir, or
in a private ``sshpyk-*`` temporary dir when that path is too long for a socket address.
``MOUNT_STATE_DIR`` (``~/.cache/sshpyk/mounts``) holds ``<hash>.json`` per mount point
(the helper and sshfs pids), so a newer mount helper ends a stale one.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import functools
import hashlib
import json
import re
import shlex
import zlib
from importlib.resources import files

from ..remote_path import remote_path_expr

# The mark, the kernel's channels (in the order of every ports list) and the remote disk's
# layout are written once, in the prelude the remote programs carry (stdlib only, so this
# side imports it as it is).
from ._prelude import (  # noqa: F401 (re-exported: the wire's names)
    CHANNELS,
    CONNECTION_FILE,
    EXIT_SUFFIX,
    KERNEL_LOG,
    LEASE,
    MARK,
    META,
    MOUNT_STATE_DIR,
    RUN_ROOT,
)

PORT_NAMES = tuple(f"{c}_port" for c in CHANNELS)

# ---- commands (local -> remote, on the session's stdin) ---------------------------------------
ACK = "ack"


def ack_command() -> bytes:
    return f"{ACK}\n".encode()


def signal_command(n: int) -> bytes:
    return f"signal {int(n)}\n".encode()


def ping_command(n: int) -> bytes:
    return f"ping {int(n)}\n".encode()


# ---- message keys (remote -> local) -----------------------------------------------------------
SHELL_PID = "shell_pid"
ERROR = "error"
READY = "ready"
PONG = "pong"
EXIT = "exit"
ATTACHED = "attached"
MOUNTED = "mounted"
EXPIRED = "expired"
REPLACED = "replaced"
EXITED = "exited"
PROBE = "probe"

# ---- how programs travel -----------------------------------------------------------------------
# Runs the program sent on stdin: its length, a newline, the program (zlib); "+" before the
# length asks the host to keep it (PROGRAMS_DIR, named by its sha256: what a launch sends);
# or "=" and the sha256 of a program the host keeps from an earlier launch.  Why: the
# launcher is 82 kB of source, 26 kB compressed, and a new connection (or one idle a while)
# starts with a 10-packet window: on a slow link every 15 kB more costs up to a round trip
# (70 ms of a launch at +150 ms RTT, measured), and sshd's zero window until the command
# runs already costs one.  A kept program makes a launch's stdin its parameters alone.  A
# program the host lacks (removed, or a home it cannot write) is answered with {"error":
# "program_missing"}: the local side sends it whole (sessions.py).
# The kept file is trusted only when it is the user's own, no one else may write it, and
# its content has the sha256 it is named by (so it is this very program, whoever wrote it).
# The program runs in a namespace of its own.  ``python_command(preload=...)`` names a
# program's sha256 in argv: a kept one is compiled and its definitions run while the stdin
# is on its way (~40 ms of a launch), and its ``main()`` runs when the stdin asks for it.
PROGRAMS_DIR = "~/.sshpyk/programs"
PROGRAM_MISSING = "program_missing"
KEEP_DAYS = 30  # a kept program no launch used for this long is removed (older versions)
_LOADER_SOURCE = f"""
def kept(name):
    if not re.fullmatch("[0-9a-f]{{64}}", name):
        return None
    try:
        fd = os.open(os.path.join(keep, name), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return None
            src = f.read()
            if hashlib.sha256(src).hexdigest() != name:
                return None
            try:
                os.utime(f.fileno())  # in use: not pruned (store)
            except (OSError, NotImplementedError):
                pass
    except OSError:
        return None
    return src


def store(src):
    name = hashlib.sha256(src).hexdigest()
    try:
        for d in (os.path.dirname(keep), keep):
            if not os.path.isdir(d):
                os.mkdir(d, 0o700)
        st = os.lstat(keep)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
            tmp = os.path.join(keep, ".%s.%d" % (name, os.getpid()))
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            with os.fdopen(os.open(tmp, flags, 0o600), "wb") as f:
                f.write(src)
            os.replace(tmp, os.path.join(keep, name))
            for old in os.listdir(keep):  # what no launch used for KEEP_DAYS (upgrades)
                path = os.path.join(keep, old)
                if os.lstat(path).st_mtime < time.time() - {KEEP_DAYS} * 86400:
                    os.unlink(path)
    except OSError:
        pass


def run(src):
    code = compile(src, "sshpyk-remote", "exec")
    exec(code, {{"__name__": "__main__", "__builtins__": __builtins__}})


keep = os.path.expanduser({PROGRAMS_DIR!r})
ready = None
if len(sys.argv) > 1:
    src = kept(sys.argv[1])
    if src is not None:
        try:
            ready = {{"__name__": "sshpyk-preloaded", "__builtins__": __builtins__}}
            exec(compile(src, "sshpyk-remote", "exec"), ready)
        except Exception:
            ready = None
b = sys.stdin.buffer
head = b.readline().strip()
if head[:1] != b"=":
    src = zlib.decompress(b.read(int(head)))  # "+n": n bytes, to keep
    if head[:1] == b"+":
        store(src)
    run(src)
elif ready and callable(ready.get("main")) and head[1:].decode("ascii", "replace") == sys.argv[1]:
    ready["__name__"] = "__main__"
    ready["main"]()
else:
    src = kept(head[1:].decode("ascii", "replace"))
    if src is None:
        sys.stdout.write({MARK!r} + '{{"error": "{PROGRAM_MISSING}"}}' + "\\n")
        sys.stdout.flush()
        sys.exit(0)
    run(src)
"""


def _packed(source: str) -> str:
    return base64.b64encode(zlib.compress(source.encode(), 9)).decode()


LOADER = (
    "import sys,zlib,base64,hashlib,os,re,stat,time;"
    # compressed: it shows in `ps` on the host for as long as the program runs
    f"exec(zlib.decompress(base64.b64decode('{_packed(_LOADER_SOURCE)}')))"
)

# A program's ``from ._prelude import ...  # sshpyk: bundled`` (one line, or parenthesized
# with the mark after the parenthesis) is dropped from what is sent, and remote/_prelude.py
# goes ahead of the program: the programs share that code in
# the package, and each runs alone on the host, where sshpyk is not installed.  The other
# modules imported so go between the prelude and the program, each after the ones it
# imports so itself (its annotations and base classes need them defined); its group names
# each.
BUNDLED = re.compile(
    r"^from \.(\w+) import (?:[\w, ]+  # sshpyk: bundled|\(  # sshpyk: bundled\n[\w,\s]*\))\n",
    re.M,
)
PRELUDE = "_prelude"


def _text(name: str) -> str:
    return files(__package__).joinpath(f"{name}.py").read_text()


def source(name: str) -> str:
    """The text of ``remote/<name>.py`` as it runs on the host: the prelude, the other
    modules it bundles (each after those it bundles itself), then it."""
    program = _text(name)
    bundled: dict[str, None] = {}

    def add(text: str) -> None:
        for module in BUNDLED.findall(text):
            if module != PRELUDE and module not in bundled:
                add(_text(module))
                bundled[module] = None

    add(program)
    texts = [_text(PRELUDE), *map(_text, bundled), program]
    return "\n\n".join(BUNDLED.sub("", text) for text in texts)


def program_stdin(name: str, params: dict, kept: bool = False, keep: bool = False) -> bytes:
    """What to write to the session: the program ``remote/<name>.py``, then its parameters.
    ``kept``: the host keeps the program from an earlier launch (see ``LOADER``): its sha256
    goes instead, and the loader answers ``program_missing`` when it has no such program.
    ``keep``: the host is to keep it (a launch's; checks and discovery leave no file)."""
    if kept:
        return f"={program_sha256(name)}\n".encode() + params_line(params)
    head = program_head(name)
    return (b"+" if keep else b"") + head + params_line(params)


@functools.lru_cache(maxsize=None)
def runs_main_only(name: str) -> bool:
    """Whether ``remote/<name>.py`` only defines things, but for a last ``if __name__ ==
    "__main__": main()``: what the loader may run ahead of its stdin (``preload``)."""
    body = ast.parse(_text(name)).body
    last = body[-1] if body else None
    guarded = (
        isinstance(last, ast.If)
        and ast.unparse(last.test) == "__name__ == '__main__'"
        and [ast.unparse(x) for x in last.body] == ["main()"]
    )
    quiet = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign)

    def defines(node) -> bool:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        return docstring or isinstance(node, quiet)

    return guarded and all(map(defines, body[:-1]))


@functools.lru_cache(maxsize=None)
def program_sha256(name: str) -> str:
    """The name the host keeps ``remote/<name>.py`` under (its source as the loader runs it)."""
    return hashlib.sha256(source(name).encode()).hexdigest()


def program_head(name: str) -> bytes:
    """The program alone: a session given it waits, started and compiled, for its
    parameters (``params_line``), which may follow much later (a launcher kept warm)."""
    return _compressed(name)


@functools.lru_cache(maxsize=None)
def _compressed(name: str) -> bytes:
    src = source(name)
    assert src.isascii()  # one byte a character: the remote python decodes it as it likes
    data = zlib.compress(src.encode(), 9)
    return f"{len(data)}\n".encode() + data


def params_line(params: dict) -> bytes:
    return f"{json.dumps(params)}\n".encode()


def python_command(
    prefix: str,
    program: str | None = None,
    params: dict | None = None,
    prelude: tuple[str, ...] | list[str] = (),
    preload: str | None = None,
) -> str:
    """The remote shell command that runs a program with ``prefix``'s python.

    By default the program comes on stdin (see ``program_stdin``) and reports on stdout;
    ``preload``: the program it will most likely be, made ready ahead if the host keeps it.
    With ``program``, it and its ``params`` go in argv and every report goes to stderr: for
    programs whose stdin and stdout are a data stream.  argv is visible to every user of
    the host, so such params must never hold a secret.

    The command is one line of printable ASCII, which every login shell sshd may hand it to
    (sh, bash, zsh, fish, csh, tcsh) parses alike: csh/tcsh reject a newline inside quotes,
    so the program travels base64-encoded (its name stays readable in ``ps``).

    ``prelude`` (the kernelspec's: ``module load …``, ``conda activate …``): lines run one by
    one, stdin from /dev/null, in a login shell (bash -l where there is bash, else sh -l) and
    in the same shell as the program's ``exec``, so what they set is the program's
    environment; the prefix is checked after them (a module may provide it).  The first line
    that fails ends the program's start with ``{"error": "prelude_failed", "line": n, "rc":
    rc, "output": base64 of its last output}``."""
    missing_prefix = shlex.quote(MARK + json.dumps({ERROR: "prefix_missing"}))
    missing_python = shlex.quote(MARK + json.dumps({ERROR: "python_missing"}))
    p = remote_path_expr(prefix)
    if program is None:
        out = ""
        run = f'exec "$py" -c {shlex.quote(LOADER)}'
        if preload:  # the program the stdin will most likely name (see LOADER)
            assert runs_main_only(preload), f"{preload} must run its main() only as __main__"
            run += f" {program_sha256(preload)}"
    else:
        out = " >&2"
        code = base64.b64encode(source(program).encode()).decode()
        # double quotes inside: no '"'"' in the shell quoting around it
        loader = f'import base64;exec(compile(base64.b64decode("{code}"),"sshpyk-{program}",'
        loader += '"exec"))'
        args = f"{shlex.quote(loader)} {shlex.quote(json.dumps(params or {}))}"
        run = f'exec "$py" -c {args}'
    # $$ stays the program's pid across exec: the handle to kill it should it hang
    script = (
        f"printf '{MARK}{{\"{SHELL_PID}\": %s}}\\n' $${out}; "
        f"{prelude_script(prelude, out)}"
        f"if [ ! -d {p} ]; then echo {missing_prefix}{out}; exit 0; fi; "
        # bin/python, else bin/python3: a system prefix (/usr on Debian) has only the latter
        f'py={p}/bin/python; [ -x "$py" ] || py={p}/bin/python3; '
        f'if [ ! -x "$py" ]; then echo {missing_python}{out}; exit 0; fi; '
        f"{run}"
    )
    command = shell_command(script, login=bool(prelude))
    assert "\n" not in command and "\r" not in command, "one line, for every shell"
    return command


def shell_command(script: str, login: bool = False) -> str:
    """``script`` run through /bin/sh whatever the user's login shell is (csh, fish, ...);
    ``login`` (a prelude's): in a login shell, bash -l where there is bash, else sh -l, whose
    profile defines ``module`` and the like."""
    if login:
        shell = 'command -v bash >/dev/null 2>&1 && exec bash -l -c "$0"; exec sh -l -c "$0"'
        return f"exec /bin/sh -c {shlex.quote(shell)} {shlex.quote(script)}"
    return f"exec /bin/sh -c {shlex.quote(script)}"


def prelude_script(prelude, out: str = "") -> str:
    """The shell of ``python_command``'s prelude (see there); "" without one.  The report
    is an EXIT trap, so a line that ends the shell itself (``exit``, ``set -e``) is
    reported too."""
    if not prelude:
        return ""
    report = (
        f'rc=$?; printf "{MARK}{{\\"{ERROR}\\": \\"prelude_failed\\", \\"line\\": %s, '
        f'\\"rc\\": %s, \\"output\\": \\"%s\\"}}\\n" "$n" "$rc" '
        f'"$(tail -c 2000 "$t" | base64 | tr -d "\\n")"{out}; rm -f "$t"'
    )
    parts = [f"t=$(mktemp) || exit 1; trap {shlex.quote(report)} EXIT; "]
    for n, line in enumerate(prelude, 1):
        # eval: in this shell (what it sets stays), and a trailing comment ends at its end
        parts.append(f'n={n}; eval {shlex.quote(line)} </dev/null >>"$t" 2>&1 || exit $?; ')
    parts.append('trap - EXIT; rm -f "$t"; ')
    return "".join(parts)


# ---- reading what programs say -----------------------------------------------------------------
def message(line: str) -> dict | None:
    """The message a line carries, or None for noise."""
    line = line.rstrip("\r\n")
    if not line.startswith(MARK):
        return None
    msg = json.loads(line[len(MARK) :])
    return msg if isinstance(msg, dict) else None


def messages(text: str) -> list[dict]:
    """The ``SSHPYK`` messages in a program's whole output."""
    return [m for m in map(message, text.splitlines()) if m is not None]


async def read_message(stream: asyncio.StreamReader, on_noise=None) -> dict | None:
    """The next message on ``stream`` (``shell_pid`` ones included), or None at EOF.

    Other lines are noise (the user's shell start-up files, ssh's own words): skipped, and
    handed to ``on_noise`` (one decoded line, no newline) when given."""
    while True:
        line = await stream.readline()
        if not line:
            return None
        text = line.decode(errors="replace")
        msg = message(text)
        if msg is not None:
            return msg
        if on_noise is not None:
            on_noise(text.rstrip("\r\n"))
