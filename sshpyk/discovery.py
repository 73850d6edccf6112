"""The Python environments of a host: one run of ``remote/discover.py`` on a master, and the
kernelspec for a chosen one.

Discovery comes before any prefix is known, so the program is not started the usual way
(``protocol.python_command(prefix)``): ``discover_command`` is a ``/bin/sh`` line that picks
a python >= 3.8 (the login PATH's python3, the system's, a conda base's) and runs the same
loader with it.  Used by ``sshpyk discover`` (``cli/discover.py``) and the REST route
``GET /sshpyk/hosts/{alias}/environments`` (``server/discover.py``).
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from typing import Any

from .errors import Refused, SSHPykError
from .model import schema
from .remote.protocol import ERROR, LOADER, MARK, SHELL_PID, messages, program_stdin

TIMEOUT = 30.0  # seconds for the whole discovery on the host
PROBE_TIMEOUT = 10.0  # seconds for one environment's python (or one module load)
LATE = 10.0  # seconds the session may take beyond the program's own deadline
KINDS = ("conda", "venv", "module", "system")
FIELDS = ("prefix", "kind", "name", "python", "ipykernel", "jupyter_client", "module", "error")
# where a python to run discovery with may be, in this order (the login PATH's comes first)
PYTHONS = (
    "/usr/bin/python3",
    "/usr/local/bin/python3",
    "$HOME/miniconda3/bin/python",
    "$HOME/miniforge3/bin/python",
    "$HOME/anaconda3/bin/python",
    "$HOME/mambaforge/bin/python",
    "/opt/conda/bin/python",
)
PIP_HINT = "install ipykernel there: {prefix}/bin/python -m pip install ipykernel"
# a system python (Debian's /usr: only bin/python3, and pip refuses it, PEP 668)
SYSTEM_HINT = (
    "install the system's package (Debian: apt install python3-ipykernel), or make a venv: "
    "python3 -m venv ~/jupyter-env && ~/jupyter-env/bin/pip install ipykernel"
)


def pip_hint(env: dict) -> str:
    """How to give an environment ipykernel."""
    return SYSTEM_HINT if env.get("kind") == "system" else PIP_HINT.format(prefix=env["prefix"])


MODULE_PIP = "python3 -m pip install --user ipykernel"  # after the module's load


def discover_command() -> str:
    """The remote shell command that runs ``remote/discover.py`` (sent on stdin after it)
    with the first python >= 3.8 found; ``{"error": "no_python"}`` when there is none.
    ``$PATH`` there is the login shell's for a non-interactive command (sshd's, plus what
    ~/.bashrc adds); the program itself asks a login shell for the rest."""
    no_python = shlex.quote(MARK + json.dumps({ERROR: "no_python"}))
    check = shlex.quote("import sys;sys.exit(sys.version_info<(3,8))")
    candidates = " ".join(f'"{p}"' for p in PYTHONS)
    script = (
        f"printf '{MARK}{{\"{SHELL_PID}\": %s}}\\n' $$; "
        f'for p in "$(command -v python3 2>/dev/null)" {candidates}; do '
        f'if [ -n "$p" ] && [ -x "$p" ] && "$p" -c {check} </dev/null >/dev/null 2>&1; then '
        f'exec "$p" -c {shlex.quote(LOADER)}; fi; done; echo {no_python}'
    )
    command = f"exec /bin/sh -c {shlex.quote(script)}"
    assert "\n" not in command and command.isascii(), "one line, for every shell"
    return command


def _environment(raw: Any) -> dict[str, Any] | None:
    """One environment as the contract says it (every field, its type), or None."""
    if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
        return None
    env = {
        "prefix": str(raw.get("prefix") or ""),
        "kind": raw["kind"],
        "name": str(raw.get("name") or ""),
        "python": raw.get("python") if isinstance(raw.get("python"), str) else None,
        "ipykernel": raw.get("ipykernel") is True,
        "jupyter_client": raw.get("jupyter_client") is True,
        "module": raw.get("module") if isinstance(raw.get("module"), str) else None,
        "error": raw.get("error") if isinstance(raw.get("error"), str) else None,
    }
    return env


def answer(found: dict) -> dict[str, Any]:
    """``{"environments": [...], "errors": [...], "home": str|None}`` from the program's answer."""
    envs = [e for e in map(_environment, found.get("environments") or []) if e is not None]
    errors = [str(e) for e in found.get("errors") or []]
    home = found.get("home") if isinstance(found.get("home"), str) else None
    return {"environments": envs, "errors": errors, "home": home}


async def discover(master: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The environments of ``master``'s host (the master is up: see ``Master.ensure``),
    within ``timeout`` seconds (a hung environment costs at most ``PROBE_TIMEOUT``).
    Raises ``SSHPykError`` when the host cannot run discovery at all."""
    params = {"timeout": timeout, "probe_timeout": min(PROBE_TIMEOUT, timeout / 2)}
    try:
        rc, out, err = await master.run(
            discover_command(), input=program_stdin("discover", params), timeout=timeout + LATE
        )
    except asyncio.TimeoutError:  # the program bounds itself: this is a host that stalled
        raise SSHPykError(
            f"environment discovery: no answer within {timeout + LATE:g} s",
            kind="discover_failed",
        ) from None
    found = [m for m in messages(out) if SHELL_PID not in m]
    if not found:
        raise SSHPykError(
            f"environment discovery failed: {err.strip()[-300:] or rc}", kind="discover_failed"
        )
    if found[0].get(ERROR) == "no_python":
        raise SSHPykError(
            "discovery needs a python >= 3.8 on the host (python3 on the PATH, /usr/bin/python3 "
            "or a conda base in the usual place): none was found",
            kind="discover_failed",
        )
    return answer(found[0])


# ---- a kernelspec per chosen environment -------------------------------------------------


def find(environments: list[dict], prefix: str, home: str | None = None) -> dict | None:
    """The discovered environment at ``prefix`` (``~/x`` matches when the home is known)."""
    want = prefix.rstrip("/") or "/"
    if home and (want == "~" or want.startswith("~/")):
        want = home.rstrip("/") + want[1:]
    for env in environments:
        if env["prefix"].rstrip("/") == want or (env["module"] and env["module"] == prefix):
            return env
    return None


def usable(env: dict) -> None:
    """Refuses an environment a kernel cannot start in, saying what to do."""
    where = f"module {env['module']}" if env["module"] else env["prefix"]
    if env["error"] and not env["python"]:
        raise Refused(f"{where}: {env['error']}", field="prefix")
    if not env["ipykernel"]:
        hint = pip_hint(env)
        if env["module"]:
            hint = (
                f"install ipykernel there: module load {shlex.quote(env['module'])} && {MODULE_PIP}"
            )
        raise Refused(f"{where} has no ipykernel: {hint}", field="prefix")


def kernel_name_for(alias: str, env: dict, name_prefix: str | None = None) -> str:
    """``<name_prefix or alias>-<env name>``, lowered to what a kernel name may hold."""
    raw = f"{name_prefix or alias}-{env['name'] or env['kind']}".lower()
    return re.sub(r"[^a-z0-9._-]+", "-", raw).strip("-.") or "ssh-python"


def kernelspec_model(
    alias: str, env: dict, *, ssh_config: str | None = None, name_prefix: str | None = None
) -> dict[str, Any]:
    """The kernelspec model (``sshpyk.model``) of a kernel in ``env`` on ``alias``."""
    usable(env)
    label = env["module"] or env["name"] or env["prefix"]
    model: dict[str, Any] = {
        "kernel_name": kernel_name_for(alias, env, name_prefix),
        "display_name": f"{alias}: {label} (Python {env['python']})",
        "language": "python",
        "interrupt_mode": "message",
        "ssh_host_alias": alias,
        "remote_python_prefix": env["prefix"],
        "remote_kernel_name": "python3",
    }
    if ssh_config:
        model["ssh_config"] = ssh_config
    if env["module"] and "prelude" in schema()["properties"]:
        # quoted: a module's name is the host's word, the prelude runs in a shell
        model["prelude"] = [f"module load {shlex.quote(env['module'])}"]
    return model
