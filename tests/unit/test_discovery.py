"""Environment discovery's pure parts: reading conda's environments.txt and JSON, the module
listing, the login shell's facts, a probe's answer (``sshpyk/remote/discover.py``), and the
local side's answer, matching and kernelspec (``sshpyk/discovery.py``).  No ssh, no host."""

from __future__ import annotations

import pytest

from sshpyk import discovery
from sshpyk.errors import Refused
from sshpyk.model import validate
from sshpyk.remote import discover as remote


def test_environments_txt_one_prefix_a_line_blank_comment_and_repeats_dropped():
    text = "/home/u/miniconda3\n\n  /home/u/miniconda3/envs/a  \n# old\n/home/u/miniconda3\n"
    assert remote.parse_environments_txt(text) == [
        "/home/u/miniconda3",
        "/home/u/miniconda3/envs/a",
    ]
    assert remote.parse_environments_txt("") == []


def test_conda_json_envs_after_noise():
    text = 'some warning\n{\n "envs": ["/opt/conda", "/opt/conda/envs/x", 3]\n}\ntrailing'
    assert remote.parse_conda_json(text) == ["/opt/conda", "/opt/conda/envs/x"]


@pytest.mark.parametrize("text", ["", "no json here", '{"other": 1}', '{"envs": "x"}'])
def test_conda_json_without_envs_is_an_error(text):
    with pytest.raises(ValueError):
        remote.parse_conda_json(text)


def test_module_avail_lmod_terse():
    text = (
        "/opt/apps/modulefiles/Core:\n"
        "python/3.10.4\n"
        "python/3.11.6(default)\n"
        "Python/3.12.1 <L>\n"
        "gcc/12.2.0\n"
        "/opt/apps/modulefiles/Compiler:\n"
        "py-numpy/1.26\n"
        "python3/3.9(D)\n"
    )
    assert remote.parse_module_avail(text) == [
        "python/3.10.4",
        "python/3.11.6",
        "Python/3.12.1",
        "python3/3.9",
    ]


def test_module_avail_environment_modules_and_messages():
    text = (
        "/usr/share/modules/modulefiles:\n"
        "python/3.11\n"
        "python/\n"
        "No module(s) or extension(s) found!\n"
        'Use "module spider" to find all possible python modules.\n'
    )
    assert remote.parse_module_avail(text) == ["python/3.11", "python"]


def test_login_facts():
    mark = remote.LOGIN_MARK
    text = (
        "welcome to the cluster\n"
        f"{mark}path /usr/bin:/bin\n"
        f"{mark}cmd conda conda\n"  # a shell function: no path
        f"{mark}cmd mamba /opt/mamba/bin/mamba\n"
        f"{mark}cmd python3 /usr/bin/python3\n"
        f"{mark}module\n"
        f"{mark}avail-begin\n"
        "/mods:\npython/3.11\n"
        f"{mark}avail-end\n"
    )
    facts = remote.parse_login(text)
    assert facts["path"] == "/usr/bin:/bin"
    assert facts["cmds"] == {"mamba": "/opt/mamba/bin/mamba", "python3": "/usr/bin/python3"}
    assert facts["module"] is True
    assert remote.parse_module_avail(facts["avail"]) == ["python/3.11"]
    assert remote.parse_login("")["module"] is False


def test_probe_answer():
    line = remote.PROBE_MARK + '{"python": "3.11.2", "ipykernel": true, "jupyter_client": true}'
    assert remote.parse_probe(f"noise\n{line}\n")["ipykernel"] is True
    assert remote.parse_probe("Traceback ...\nSyntaxError") is None
    assert remote.parse_probe(remote.PROBE_MARK + "{broken") is None


def test_the_probe_runs_and_says_what_this_python_has():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", remote.PROBE], capture_output=True, text=True, timeout=30
    ).stdout
    found = remote.parse_probe(out)
    assert found["python"] == sys.version.split()[0]
    assert found["jupyter_client"] is True  # sshpyk depends on it


def test_conda_names():
    bases = ["/home/u/miniconda3"]
    assert remote.conda_name("/home/u/miniconda3", bases) == "base"
    assert remote.conda_name("/home/u/miniconda3/envs/torch/", bases) == "torch"
    assert remote.conda_name("/scratch/envs/x", bases) == "x"
    assert remote.conda_name("/scratch/myenv", bases) == "myenv"


def test_is_env(tmp_path):
    venv, conda, bare = tmp_path / "v", tmp_path / "c", tmp_path / "b"
    for d in (venv, conda, bare):
        (d / "bin").mkdir(parents=True)
        (d / "bin" / "python").write_text("#!/bin/sh\n")
        (d / "bin" / "python").chmod(0o755)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (conda / "conda-meta").mkdir()
    assert remote.is_env(str(venv)) == "venv"
    assert remote.is_env(str(conda)) == "conda"
    assert remote.is_env(str(bare)) is None
    assert remote.is_env(str(tmp_path / "missing")) is None


def test_found_dedupes_and_bounds(monkeypatch, tmp_path):
    monkeypatch.setattr(remote, "LIMIT", 2)
    found = remote.Found()
    found.add(str(tmp_path), "venv", "a")
    found.add(str(tmp_path) + "/.", "conda", "a-again")  # the same directory
    found.add("/x", "venv", "b")
    found.add("/y", "venv", "c")
    found.add("/z", "venv", "d")
    assert [e["name"] for e in found.listed()] == ["a", "b"]
    assert found.errors == ["more than 2 environments: the first 2 are listed"]


def test_run_bounds_a_hung_process_and_its_children():
    import time

    t0 = time.monotonic()
    rc, _ = remote.run(["/bin/sh", "-c", "sleep 30 & sleep 30"], 0.5)
    assert rc is None and time.monotonic() - t0 < 5
    assert remote.run(["/bin/sh", "-c", "echo hi"], 5) == (0, "hi\n")
    assert remote.run(["/bin/true"], 0) == (None, "")


# ---- the local side ---------------------------------------------------------------------

ENV = {
    "prefix": "/home/u/miniconda3/envs/torch",
    "kind": "conda",
    "name": "torch",
    "python": "3.11.2",
    "ipykernel": True,
    "jupyter_client": True,
    "module": None,
    "error": None,
}


def test_answer_keeps_the_contract():
    found = discovery.answer(
        {
            "environments": [
                {**ENV, "extra": 1},
                {"kind": "module", "module": "python/3.11", "name": "python/3.11"},
                {"kind": "nonsense", "prefix": "/x"},
                "junk",
            ],
            "errors": ["conda env list failed"],
            "home": "/home/u",
        }
    )
    assert found["environments"][0] == ENV
    mod = found["environments"][1]
    assert set(mod) == set(discovery.FIELDS)
    assert mod["prefix"] == "" and mod["python"] is None and mod["ipykernel"] is False
    assert len(found["environments"]) == 2
    assert found["errors"] == ["conda env list failed"] and found["home"] == "/home/u"


def test_find_by_prefix_home_or_module():
    mod = {**ENV, "kind": "module", "module": "python/3.11", "prefix": "/apps/py"}
    envs = [ENV, mod]
    assert discovery.find(envs, "/home/u/miniconda3/envs/torch/") is ENV
    assert discovery.find(envs, "~/miniconda3/envs/torch", home="/home/u") is ENV
    assert discovery.find(envs, "python/3.11") is mod
    assert discovery.find(envs, "/nope") is None


def test_kernelspec_model_is_valid_and_named_for_the_env():
    model = discovery.kernelspec_model("gpu.box", ENV, ssh_config=None)
    assert validate(model)["kernel_name"] == "gpu.box-torch"
    assert model["remote_python_prefix"] == ENV["prefix"]
    assert model["remote_kernel_name"] == "python3"
    assert "3.11.2" in model["display_name"]
    named = discovery.kernelspec_model("h", ENV, name_prefix="Lab Team")
    assert named["kernel_name"] == "lab-team-torch"


def test_a_module_kernel_loads_its_module_first():
    mod = {**ENV, "kind": "module", "module": "python/3.11", "name": "python/3.11"}
    model = discovery.kernelspec_model("h", mod)
    assert model["prelude"] == ["module load python/3.11"]
    assert validate(model)["kernel_name"] == "h-python-3.11"
    # the host's word for it is quoted for the shell the prelude runs in
    odd = {**mod, "module": "py;touch x"}
    assert discovery.kernelspec_model("h", odd)["prelude"] == ["module load 'py;touch x'"]


def test_an_env_without_ipykernel_is_refused_saying_how_to_install_it():
    with pytest.raises(Refused) as e:
        discovery.kernelspec_model("h", {**ENV, "ipykernel": False})
    msg = str(e.value)
    assert ENV["prefix"] in msg
    assert f"install ipykernel there: {ENV['prefix']}/bin/python -m pip install ipykernel" in msg


def test_a_broken_env_is_refused_with_its_error():
    broken = {**ENV, "python": None, "ipykernel": False, "error": "its python did not answer"}
    with pytest.raises(Refused, match="did not answer"):
        discovery.kernelspec_model("h", broken)


def test_the_command_is_one_ascii_line_through_sh():
    cmd = discovery.discover_command()
    assert cmd.startswith("exec /bin/sh -c ") and "\n" not in cmd and cmd.isascii()


# ---- the whole program, as sshpyk sends it, against a private $HOME (no ssh) ----------------

PROFILE = """
module() {
  [ "$1" = -t ] && shift
  case "$1" in
    avail) printf '/m:\\npython/9.9-fake\\n' >&2 ;;
    load) PATH="$HOME/modpy/bin:$PATH"; export PATH ;;
  esac
}
"""


def _wrapper(path, python):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nexec {python} "$@"\n')
    path.chmod(0o755)


def test_the_program_finds_and_bounds_everything(tmp_path):
    import subprocess
    import sys

    from sshpyk.remote.protocol import messages, program_stdin

    home = tmp_path
    _wrapper(home / "venvs" / "v" / "bin" / "python", sys.executable)
    (home / "venvs" / "v" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (home / "venvs" / "not-an-env" / "bin").mkdir(parents=True)
    hang = home / "miniconda3" / "envs" / "hang"
    _wrapper(hang / "bin" / "python", "sleep 60; :")
    (hang / "conda-meta").mkdir()
    (home / ".conda").mkdir()
    (home / ".conda" / "environments.txt").write_text(f"{hang}\n/nonexistent/env\n")
    _wrapper(home / "modpy" / "bin" / "python3", sys.executable)
    (home / ".profile").write_text(PROFILE)
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        ["sh", "-c", discovery.discover_command()],
        input=program_stdin("discover", {"timeout": 8, "probe_timeout": 2}),
        capture_output=True,
        env=env,
        timeout=30,
    )
    (found,) = [m for m in messages(r.stdout.decode()) if "shell_pid" not in m]
    by = {e["prefix"]: e for e in found["environments"]}
    venv = by[str(home / "venvs" / "v")]
    assert venv["kind"] == "venv" and venv["python"] == sys.version.split()[0]
    assert venv["jupyter_client"] is True and venv["error"] is None
    assert str(home / "venvs" / "not-an-env") not in by
    assert by[str(hang)]["kind"] == "conda" and by[str(hang)]["name"] == "hang"
    assert "did not answer within 2 s" in by[str(hang)]["error"]
    (mod,) = [e for e in found["environments"] if e["kind"] == "module"]
    assert mod["module"] == "python/9.9-fake" and mod["prefix"] == str(home / "modpy")
    assert mod["python"] == sys.version.split()[0]
    assert any("/nonexistent/env" in e for e in found["errors"])
    assert found["home"] == str(home)


def test_a_system_python_is_given_its_package_or_a_venv_not_pip():
    from sshpyk.discovery import pip_hint

    assert "apt install python3-ipykernel" in pip_hint({"kind": "system", "prefix": "/usr"})
    assert pip_hint({"kind": "venv", "prefix": "/opt/e"}).endswith(
        "/opt/e/bin/python -m pip install ipykernel"
    )
