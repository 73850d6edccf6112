"""Discovery of a host's Python environments (issue #18), on the real ``remote`` test host:
a faked conda (``~/.conda/environments.txt``, a ``conda`` on the login PATH answering
``env list --json``), a venv in ``~/venvs``, a ``module`` shell function in ``~/.profile``
(as Lmod defines it) whose ``load`` puts a python on PATH, and an environment whose python
hangs.  The environments with ipykernel run ``/opt/sshpyk-remote-env``'s python through a
wrapper (a symlink would lose that venv: python resolves it to ``/usr/bin/python3``); the
ones without run Debian's ``/usr/bin/python3``.  Checked through ``sshpyk discover`` (JSON,
the table, ``--add`` whose kernel then runs code) and ``POST
/sshpyk/hosts/{alias}/environments``.  Everything put in the remote home is removed after."""

from __future__ import annotations

import json
import shlex
import time

import pytest
from helpers import call, kernel_json, run_code, sshpyk, start

D = "sshpyk-disc"  # everything of ours in the remote home lives under ~/sshpyk-disc
GOOD = "/opt/sshpyk-remote-env/bin/python"  # has ipykernel
PLAIN = "/usr/bin/python3"  # Debian's: no ipykernel
WRAP = '#!/bin/sh\nexec {python} "$@"\n'
HANG = "#!/bin/sh\nexec sleep 307\n"  # a python that never answers (307: ours to find)
MODULE = "python/3.11-fake"
# Lmod's `module` is a shell function the login profile defines; this one lists a python
# module (and a compiler) on stderr as Lmod does, and `load` puts that module's python on PATH
PROFILE = f"""
# sshpyk-disc-begin
PATH="$HOME/{D}/bin:$PATH"
module() {{
  [ "$1" = -t ] && shift
  case "$1" in
    avail) printf '/fake/modulefiles:\\n{MODULE}(default)\\ngcc/12.2\\n' >&2 ;;
    load) [ "$2" = {MODULE} ] || {{ echo "no module $2" >&2; return 1; }}
          PATH="$HOME/{D}/modpy/bin:$PATH"; export PATH ;;
  esac
}}
# sshpyk-disc-end
"""


def _setup_script(home: str) -> str:
    conda = f"{home}/{D}/conda"

    def write(path: str, text: str) -> str:
        return f"printf %s {shlex.quote(text)} > {path} && chmod 755 {path} && "

    def env(prefix: str, python: str = GOOD, marker: str = "conda-meta", script=None) -> str:
        make = f"mkdir -p {prefix}/bin && "
        if marker == "conda-meta":
            make += f"mkdir {prefix}/conda-meta && "
        if marker == "venv":
            make += f"echo 'home = /usr/bin' > {prefix}/pyvenv.cfg && "
        if script is None:
            return make + f"ln -s {python} {prefix}/bin/python && "
        return make + write(f"{prefix}/bin/python", script)

    conda_json = json.dumps({"envs": [conda, f"{conda}/envs/fromjson"]})
    wrap = WRAP.format(python=GOOD)
    return (
        f"set -e; rm -rf ~/{D} ~/venvs; "
        + env(conda, script=wrap)
        + env(f"{conda}/envs/good", script=wrap)
        + env(f"{conda}/envs/plain", PLAIN)
        + env(f"{conda}/envs/hang", script=HANG)
        + env(f"{conda}/envs/fromjson", script=wrap)
        + env(f"{home}/venvs/myvenv", PLAIN, marker="venv")
        + f"mkdir -p ~/{D}/modpy/bin && "
        + write(f"~/{D}/modpy/bin/python3", wrap)
        + write(f"~/{D}/modpy/bin/python", wrap)
        + f"mkdir -p ~/{D}/bin && "
        + write(f"~/{D}/bin/conda", f"#!/bin/sh\necho {shlex.quote(conda_json)}\n")
        + "mkdir -p ~/.conda; "
        + "if [ -f ~/.conda/environments.txt ]; then "
        + "cp -p ~/.conda/environments.txt ~/.conda/environments.txt.keep; fi; "
        + f"printf '%s\\n' {conda} {conda}/envs/good {conda}/envs/plain {conda}/envs/hang "
        + "/nonexistent/stale-env > ~/.conda/environments.txt; "
        + f"if [ -f ~/.profile ]; then cp -p ~/.profile ~/.profile.{D}-keep; fi; "
        + f"printf %s {shlex.quote(PROFILE)} >> ~/.profile"
    )


CLEANUP = (
    f"rm -rf ~/{D} ~/venvs ~/.conda/environments.txt; "
    "[ -f ~/.conda/environments.txt.keep ] && mv ~/.conda/environments.txt.keep "
    "~/.conda/environments.txt; rmdir ~/.conda 2>/dev/null; "
    f"if [ -f ~/.profile.{D}-keep ]; then mv ~/.profile.{D}-keep ~/.profile; "
    "else rm -f ~/.profile; fi"
)


@pytest.fixture(scope="module")
def fake_envs(netns_hosts):
    """The faked environments in the remote home; their prefixes by name."""
    th = netns_hosts
    home = f"/home/{th.user}"
    r = th.ssh("remote", _setup_script(home))
    try:
        assert r.returncode == 0, r.stderr
        conda = f"{home}/{D}/conda"
        yield {
            "home": home,
            "base": conda,
            "good": f"{conda}/envs/good",
            "plain": f"{conda}/envs/plain",
            "hang": f"{conda}/envs/hang",
            "fromjson": f"{conda}/envs/fromjson",
            "myvenv": f"{home}/venvs/myvenv",
            "modpy": f"{home}/{D}/modpy",
        }
    finally:
        th.ssh("remote", CLEANUP)
        left = th.ssh("remote", f"ls -d ~/{D} ~/venvs 2>/dev/null; cat ~/.profile 2>/dev/null")
        assert D not in left.stdout, left.stdout


def _discover(th, env, *more, timeout=12):
    args = ("discover", "remote", "--ssh-config", str(th.ssh_config), "--timeout", str(timeout))
    return sshpyk(env, *args, *more)


def _by_prefix(found):
    return {e["prefix"]: e for e in found["environments"]}


def test_discover_json_finds_conda_venvs_modules_and_bounds_a_hung_env(netns_hosts, fake_envs, env):
    t0 = time.monotonic()
    r = _discover(netns_hosts, env, "--json")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert set(found) == {"environments", "errors"}
    by = _by_prefix(found)
    good, plain = by[fake_envs["good"]], by[fake_envs["plain"]]
    assert good["kind"] == "conda" and good["name"] == "good"
    assert good["ipykernel"] is True and good["jupyter_client"] is True
    assert good["python"].startswith("3.") and good["error"] is None
    assert plain["ipykernel"] is False and plain["python"].startswith("3.")
    assert by[fake_envs["base"]]["ipykernel"] is True
    # only conda's JSON (the fake conda on the login PATH) names this one
    assert by[fake_envs["fromjson"]]["ipykernel"] is True
    venv = by[fake_envs["myvenv"]]
    assert venv["kind"] == "venv" and venv["name"] == "myvenv" and venv["ipykernel"] is False
    # the module: listed by `module -t avail python`, its python found after `module load`
    (mod,) = [e for e in found["environments"] if e["kind"] == "module"]
    assert mod["module"] == MODULE and mod["name"] == MODULE
    assert mod["prefix"] == fake_envs["modpy"] and mod["ipykernel"] is True
    assert not [e for e in found["environments"] if "gcc" in e["name"]]
    # the hung python costs its own probe's time (6 s of --timeout 12), never the rest
    hang = by[fake_envs["hang"]]
    assert hang["python"] is None and "did not answer within 6 s" in hang["error"]
    assert took < 12 + 10, took
    assert any("/nonexistent/stale-env" in e for e in found["errors"])
    left = netns_hosts.ssh("remote", "ps -eo args | grep -c '^sleep 307$' || true")
    assert left.stdout.strip() == "0", "the hung python's process was left running"


def test_discover_table_and_hint(netns_hosts, fake_envs, env):
    r = _discover(netns_hosts, env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "PYTHON", "IPYKERNEL", "PREFIX"]
    rows = {
        ln.split()[-1]: ln.split()
        for ln in lines[1:]
        if ln and ln.split()[0] in ("conda", "venv", "module", "system")
    }
    assert rows[fake_envs["good"]][:2] == ["conda", "good"] and rows[fake_envs["good"]][3] == "yes"
    assert rows[fake_envs["plain"]][3] == "no"
    assert rows[fake_envs["modpy"]][:2] == ["module", MODULE]
    # Debian's own python: /usr has only bin/python3, probed (sshpyk starts python3 there)
    assert rows["/usr"][:2] == ["system", "system"] and rows["/usr"][2].startswith("3.")
    assert any("has no ipykernel; install the system's package" in ln for ln in lines)
    hint = f"install ipykernel there: {fake_envs['plain']}/bin/python -m pip install ipykernel"
    assert any(hint in ln for ln in lines)
    assert any(ln.startswith(f"! {fake_envs['hang']}: ") for ln in lines)
    assert "sshpyk discover remote --add PREFIX" in r.stdout


async def test_add_makes_a_kernel_that_runs_and_refuses_an_env_without_ipykernel(
    netns_hosts, fake_envs, env, managers
):
    r = _discover(netns_hosts, env, "--add", fake_envs["plain"], "--add", fake_envs["good"])
    assert r.returncode == 2, (r.stdout, r.stderr)
    msg = f"install ipykernel there: {fake_envs['plain']}/bin/python -m pip install ipykernel"
    assert fake_envs["plain"] in r.stderr and msg in r.stderr
    assert "added" not in r.stdout  # nothing is written unless every one can be

    r = _discover(netns_hosts, env, "--add", "~/sshpyk-disc/conda/envs/good", "--name-prefix", "t")
    assert r.returncode == 0, r.stderr
    spec = kernel_json(env, "t-good")
    cfg = spec["metadata"]["kernel_provisioner"]["config"]
    assert cfg["remote_python_prefix"] == fake_envs["good"]
    assert cfg["remote_kernel_name"] == "python3" and cfg["ssh_host_alias"] == "remote"
    assert cfg["ssh_config"] == str(netns_hosts.ssh_config)
    km = managers("t-good")
    kc = await start(km)
    try:
        out, reply = await run_code(kc, "import sys; print(sys.prefix, 6 * 7)")
        assert reply["status"] == "ok" and out.split() == ["/opt/sshpyk-remote-env", "42"]
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()

    again = _discover(netns_hosts, env, "--add", fake_envs["good"], "--name-prefix", "t")
    assert again.returncode == 2 and "already exists" in again.stderr
    unknown = _discover(netns_hosts, env, "--add", "/not/an/env")
    assert unknown.returncode == 2 and "not among the environments" in unknown.stderr


async def test_rest_environments(jp_fetch, netns_hosts, fake_envs):
    body = {"ssh_config": str(netns_hosts.ssh_config)}
    found = await call(
        jp_fetch, "sshpyk", "hosts", "remote", "environments", method="POST", body=body
    )
    assert set(found) == {"environments", "errors"}
    by = _by_prefix(found)
    for e in found["environments"]:
        assert set(e) == {
            "prefix",
            "kind",
            "name",
            "python",
            "ipykernel",
            "jupyter_client",
            "module",
            "error",
        }
    assert by[fake_envs["good"]]["ipykernel"] is True
    assert by[fake_envs["plain"]]["ipykernel"] is False
    assert by[fake_envs["modpy"]]["module"] == MODULE
    assert "did not answer" in by[fake_envs["hang"]]["error"]
    assert any("/nonexistent/stale-env" in e for e in found["errors"])


async def test_rest_environments_errors(jp_fetch, netns_hosts, tmp_path):
    cfg = str(netns_hosts.ssh_config)
    bad = await call(
        jp_fetch, "sshpyk", "hosts", "-oProxyCommand=x", "environments", method="POST", expect=400
    )
    assert bad["field"] == "ssh_host_alias"
    ssh = await call(
        jp_fetch,
        "sshpyk",
        "hosts",
        "remote",
        "environments",
        method="POST",
        body={"ssh": "/bin/sh"},
        expect=400,
    )
    assert ssh["field"] == "ssh"
    unsafe = tmp_path / "cfg"
    unsafe.write_text("Host x\n")
    unsafe.chmod(0o666)
    refused = await call(
        jp_fetch,
        "sshpyk",
        "hosts",
        "remote",
        "environments",
        method="POST",
        body={"ssh_config": str(unsafe)},
        expect=400,
    )
    assert refused["field"] == "ssh_config"
    missing = await call(
        jp_fetch,
        "sshpyk",
        "hosts",
        "remote",
        "environments",
        method="POST",
        body={"ssh_config": str(tmp_path / "nope")},
        expect=400,
    )
    assert missing["field"] == "ssh_config"
    # a host that cannot be reached (no route): the connection's failure, 502
    down = await call(
        jp_fetch,
        "sshpyk",
        "hosts",
        "internal-direct",
        "environments",
        method="POST",
        body={"ssh_config": cfg},
        expect=502,
    )
    assert down["message"]


async def test_rest_environments_of_a_host_that_wants_a_login(jp_fetch, login_hosts):
    body = {"ssh_config": str(login_hosts.ssh_config)}
    err = await call(
        jp_fetch,
        "sshpyk",
        "hosts",
        "password",
        "environments",
        method="POST",
        body=body,
        expect=502,
    )
    assert "sshpyk login password" in err["message"]


async def test_add_a_module_kernel_loads_the_module_then_runs(
    netns_hosts, fake_envs, env, managers
):
    r = _discover(netns_hosts, env, "--add", MODULE, "--name-prefix", "mod")
    assert r.returncode == 0, r.stderr
    name = "mod-python-3.11-fake"
    cfg = kernel_json(env, name)["metadata"]["kernel_provisioner"]["config"]
    assert cfg["prelude"] == [f"module load {MODULE}"]
    assert cfg["remote_python_prefix"] == fake_envs["modpy"]
    km = managers(name)
    kc = await start(km)
    try:
        # the module's load put its bin first on PATH: the kernel ran in its environment
        code = "import os; print(os.environ['PATH'].split(':')[0])"
        out, reply = await run_code(kc, code)
        assert reply["status"] == "ok" and out.strip() == f"{fake_envs['modpy']}/bin"
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()
