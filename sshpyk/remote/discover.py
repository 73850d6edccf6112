# The Python environments of a host, for `sshpyk discover` and the Lab form's picker (the
# wire: sshpyk/remote/protocol.py; the prelude is sent ahead of this program).  One answer:
# {"environments": [{prefix, kind, name, python, ipykernel, jupyter_client, module, error}],
#  "errors": [...], "home": ...}.
#
# How it runs: discovery comes before any environment is known, so no prefix's python can
# carry it.  ``sshpyk.discovery.discover_command`` is a /bin/sh line that picks the first
# python >= 3.8 among the login PATH's python3, /usr/bin/python3, /usr/local/bin/python3 and
# the usual conda bases' bin/python, and runs this program with it through the usual loader
# (stdin).  Python rather than shell because reading conda's JSON, probing many environments
# in parallel and bounding each in time is clean in Python and fragile in sh.
#
# What it runs, nothing else from the user's files: one login shell (bash -l, else sh -l:
# the profile defines `module` and the login PATH) to read PATH, `command -v conda ...` and
# `module -t avail python`; `conda env list --json` when conda/mamba/micromamba is on that
# PATH; each environment's own python with a tiny -c probe; for a module, a login shell that
# `module load`s it and probes the python it puts on PATH.  Every process: stdin /dev/null,
# its own session (the whole group is killed at its timeout), never past the total deadline.
import contextlib
import glob
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ._prelude import emit, read_params  # sshpyk: bundled

LIMIT = 200  # environments at most (the first found win)
WORKERS = 8  # probes at once
MODULES = 20  # modules loaded to find their python, at most
CONDA_BASES = (
    "~/miniconda3",
    "~/anaconda3",
    "~/miniforge3",
    "~/mambaforge",
    "~/micromamba",
    "/opt/conda",
)
VENV_DIRS = (
    "~/.venvs",
    "~/venvs",
    "~/.virtualenvs",
    "~/envs",
    "~/.local/share/virtualenvs",
    *tuple(base + "/envs" for base in CONDA_BASES),
)
SYSTEM_PREFIXES = ("/usr", "/usr/local")
ENVIRONMENTS_TXT = "~/.conda/environments.txt"
CONDAS = ("conda", "mamba", "micromamba")
# What a python answers; written for python 2 too (an old env then says its version).
PROBE_MARK = "SSHPYK-PROBE "
PROBE = (
    "import sys,json\n"
    "r=dict(python=sys.version.split()[0],prefix=sys.prefix)\n"
    "try:\n"
    " from importlib.util import find_spec as f\n"
    " r.update(ipykernel=f('ipykernel') is not None,\n"
    "  jupyter_client=f('jupyter_client') is not None)\n"
    "except Exception as e:\n"
    " r.update(ipykernel=False,jupyter_client=False,error='cannot look for packages: %s'%e)\n"
    "print('" + PROBE_MARK + "'+json.dumps(r))\n"
)
LOGIN_MARK = "@@sshpyk "
# The login shell's facts, one marked line each; module's listing between two marks.
LOGIN_SCRIPT = (
    "M='" + LOGIN_MARK + '\'; printf \'%spath %s\\n\' "$M" "$PATH"; '
    "for c in " + " ".join((*CONDAS, "python3")) + "; do "
    'p=$(command -v "$c" 2>/dev/null) && printf \'%scmd %s %s\\n\' "$M" "$c" "$p"; done; '
    "if type module >/dev/null 2>&1; then printf '%smodule\\n' \"$M\"; "
    "printf '%savail-begin\\n' \"$M\"; "
    "{ module -t avail python || module avail -t python; } 2>&1; "
    "printf '\\n%savail-end\\n' \"$M\"; fi"
)


# ---- reading what was found (pure: tests/unit) --------------------------------------------
def parse_environments_txt(text):
    """conda's ~/.conda/environments.txt: one prefix a line (blank and # lines ignored)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line not in out:
            out.append(line)
    return out


def parse_conda_json(text):
    """``conda env list --json``'s prefixes (``{"envs": [...]}``); noise before it is skipped."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON in the output")
    data, _ = json.JSONDecoder().raw_decode(text[start:])
    envs = data.get("envs") if isinstance(data, dict) else None
    if not isinstance(envs, list):
        raise ValueError("no 'envs' list in the JSON")
    return [e for e in envs if isinstance(e, str)]


def parse_module_avail(text):
    """The python modules of ``module -t avail python`` (Lmod or Environment Modules):
    one module a line, directory headers end with ':', marks like (default), (D), <L>."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.endswith(":"):
            continue  # a directory's header
        for mark in ("(", "<"):
            line = line.split(mark)[0]
        line = line.strip().rstrip("/")
        if " " in line:
            continue  # a sentence (a message, a hint)
        if line and "python" in line.lower() and line not in out:
            out.append(line)
    return out


def parse_login(text):
    """The login shell's facts: path (str), cmds {name: path}, module (bool), avail (text)."""
    facts = {"path": "", "cmds": {}, "module": False, "avail": ""}
    avail, inside = [], False
    for line in text.splitlines():
        if line.startswith(LOGIN_MARK):
            word, _, rest = line[len(LOGIN_MARK) :].partition(" ")
            if word == "path":
                facts["path"] = rest
            elif word == "cmd":
                name, _, where = rest.partition(" ")
                if where.startswith("/"):  # a shell function (conda's init) is no path
                    facts["cmds"][name] = where
            elif word == "module":
                facts["module"] = True
            inside = word == "avail-begin"
        elif inside:
            avail.append(line)
    facts["avail"] = "\n".join(avail)
    return facts


def parse_probe(text):
    """A probe's answer, or None when the python said nothing usable."""
    for line in text.splitlines():
        if line.startswith(PROBE_MARK):
            try:
                found = json.loads(line[len(PROBE_MARK) :])
            except ValueError:
                return None
            return found if isinstance(found, dict) else None
    return None


def python_of(prefix):
    """bin/python, else bin/python3 (a system prefix such as Debian's /usr has only that):
    the one sshpyk's launch command runs (protocol.python_command)."""
    python = os.path.join(prefix, "bin", "python")
    if os.access(python, os.X_OK):
        return python
    return os.path.join(prefix, "bin", "python3")


def is_env(prefix):
    """A python environment: bin/python, and pyvenv.cfg (venv) or conda-meta (conda)."""
    if not os.access(python_of(prefix), os.X_OK):
        return None
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        return "conda"
    if os.path.isfile(os.path.join(prefix, "pyvenv.cfg")):
        return "venv"
    return None


# ---- running things, bounded ------------------------------------------------------------------
class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self, most):
        return max(0.0, min(most, self.end - time.monotonic()))


def run(argv, timeout):
    """(rc, output) of argv, stdout and stderr together; rc None when it ran out of time
    (its whole process group is killed: a hung python cannot stall discovery)."""
    if timeout <= 0:
        return None, ""
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as e:
        return 127, str(e)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        # a grandchild that left the group may hold the pipe: do not wait for it
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=1)
        proc.wait()
        return None, ""


def login_shell(script):
    shell = "/bin/bash" if os.access("/bin/bash", os.X_OK) else "/bin/sh"
    return [shell, "-l", "-c", script]


def last_words(out):
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    return lines[-1][-300:] if lines else "no output"


# ---- finding ------------------------------------------------------------------------------
class Found:
    def __init__(self):
        self.envs = []  # dicts, in the order found
        self.errors = []
        self._seen = set()

    def add(self, prefix, kind, name, module=None):
        key = module or os.path.realpath(prefix)
        if key in self._seen:
            return
        self._seen.add(key)
        if len(self.envs) >= LIMIT:
            if len(self.envs) == LIMIT:
                self.errors.append(f"more than {LIMIT} environments: the first {LIMIT} are listed")
                self.envs.append(None)  # the marker: said once
            return
        self.envs.append(
            {
                "prefix": prefix,
                "kind": kind,
                "name": name,
                "python": None,
                "ipykernel": False,
                "jupyter_client": False,
                "module": module,
                "error": None,
            }
        )

    def listed(self):
        return [e for e in self.envs if e is not None]


def conda_name(prefix, bases):
    """An env's name as conda says it: its directory's name under an envs/, else "base"."""
    prefix = prefix.rstrip("/")
    if os.path.basename(os.path.dirname(prefix)) == "envs" or prefix not in bases:
        return os.path.basename(prefix)
    return "base"


def find_conda(found, facts, deadline, step):
    bases = [os.path.expanduser(b) for b in CONDA_BASES]
    prefixes = []  # (prefix, what listed it)
    path = os.path.expanduser(ENVIRONMENTS_TXT)
    try:
        with open(path) as f:
            prefixes += [(p, ENVIRONMENTS_TXT) for p in parse_environments_txt(f.read())]
    except FileNotFoundError:
        pass
    except OSError as e:
        found.errors.append(f"{ENVIRONMENTS_TXT}: {e.strerror or e}")
    for name in CONDAS:
        exe = facts["cmds"].get(name)
        if not exe:
            continue
        rc, out = run([exe, "env", "list", "--json"], deadline.left(step))
        if rc is None:
            found.errors.append(f"{exe} env list --json: no answer within {step:g} s")
        elif rc != 0:
            found.errors.append(f"{exe} env list --json failed ({rc}): {last_words(out)}")
        else:
            try:
                prefixes += [(p, f"{exe} env list") for p in parse_conda_json(out)]
            except ValueError as e:
                found.errors.append(f"{exe} env list --json: {e}")
        break  # one conda's list is the same envs
    for base in bases:
        if is_env(base) == "conda":
            prefixes.append((base, base))
    for prefix, source in prefixes:
        prefix = os.path.expanduser(prefix)
        if not os.path.isdir(prefix):
            found.errors.append(f"{source} lists {prefix}, which does not exist")
            continue
        found.add(prefix, "conda", conda_name(prefix, bases))


def find_venvs(found):
    for where in VENV_DIRS:
        for prefix in sorted(glob.glob(os.path.join(os.path.expanduser(where), "*"))):
            kind = is_env(prefix)
            if kind:
                found.add(prefix, kind, os.path.basename(prefix))


def find_system(found, facts):
    prefixes = list(SYSTEM_PREFIXES)
    py3 = facts["cmds"].get("python3")
    if py3:
        prefixes.insert(0, os.path.dirname(os.path.dirname(py3)))
    for prefix in prefixes:
        if os.path.exists(os.path.join(prefix, "bin", "python3")) or os.path.exists(
            python_of(prefix)
        ):
            kind = is_env(prefix)
            found.add(prefix, kind or "system", os.path.basename(prefix) if kind else "system")


# ---- probing ------------------------------------------------------------------------------
def guarded(probe, env, deadline, step, *args):
    """One probe; whatever it raises is that environment's error, never the answer's."""
    if deadline.left(step) <= 0:
        env["error"] = "not probed: discovery ran out of time"
        return
    try:
        probe(env, deadline, step, *args)
    except Exception as e:
        env["error"] = f"probe failed: {e}"


def probe_env(env, deadline, step):
    python = python_of(env["prefix"])
    if not os.access(python, os.X_OK):
        env["error"] = f"no {python} (sshpyk starts <prefix>/bin/python or python3)"
        return
    rc, out = run([python, "-c", PROBE], deadline.left(step))
    settle(env, rc, out, step)


def probe_module(env, deadline, step, facts):
    module = env["module"]
    script = (
        f"M='{LOGIN_MARK}'; module load {shlex.quote(module)} >/dev/null 2>&1 || "
        '{ echo "${M}load-failed"; exit 0; }; '
        'p=$(command -v python3 || command -v python) || { echo "${M}no-python"; exit 0; }; '
        f'echo "${{M}}python $p"; exec "$p" -c {shlex.quote(PROBE)}'
    )
    rc, out = run(login_shell(script), deadline.left(step))
    where = [ln[len(LOGIN_MARK) :] for ln in out.splitlines() if ln.startswith(LOGIN_MARK)]
    if "load-failed" in where:
        env["error"] = f"module load {module} failed"
        return
    if "no-python" in where:
        env["error"] = f"module load {module} puts no python on PATH"
        return
    pythons = [w[len("python ") :] for w in where if w.startswith("python ")]
    if pythons:
        if pythons[0] == facts["cmds"].get("python3"):
            env["error"] = f"module load {module} puts no python of its own on PATH"
            return
        env["prefix"] = os.path.dirname(os.path.dirname(pythons[0]))
    settle(env, rc, out, step)


def settle(env, rc, out, step):
    if rc is None:
        env["error"] = f"its python did not answer within {step:g} s"
        return
    answer = parse_probe(out)
    if answer is None:
        env["error"] = f"its python failed ({rc}): {last_words(out)}"
        return
    env["python"] = answer.get("python")
    env["ipykernel"] = bool(answer.get("ipykernel"))
    env["jupyter_client"] = bool(answer.get("jupyter_client"))
    env["error"] = answer.get("error")


def main():
    params = read_params()
    total = float(params.get("timeout") or 30)
    step = float(params.get("probe_timeout") or min(10.0, total / 2))
    deadline = Deadline(total)
    found = Found()
    rc, out = run(login_shell(LOGIN_SCRIPT), deadline.left(step))
    facts = parse_login(out)
    if rc is None:
        found.errors.append(
            f"the login shell did not answer within {step:g} s: conda and modules were not asked"
        )
    find_conda(found, facts, deadline, step)
    find_venvs(found)
    find_system(found, facts)
    modules = parse_module_avail(facts["avail"]) if facts["module"] else []
    if len(modules) > MODULES:
        found.errors.append(f"{len(modules)} python modules: the first {MODULES} are listed")
    for module in modules[:MODULES]:
        found.add("", "module", module, module=module)
    envs = found.listed()
    with ThreadPoolExecutor(WORKERS) as pool:
        for env in envs:
            if env["kind"] == "module":
                pool.submit(guarded, probe_module, env, deadline, step, facts)
            else:
                pool.submit(guarded, probe_env, env, deadline, step)
    emit(
        environments=envs, errors=found.errors, home=os.path.expanduser("~"), python=sys.executable
    )


if __name__ == "__main__":
    main()
