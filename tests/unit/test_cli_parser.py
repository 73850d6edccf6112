"""``sshpyk.cli``: the parser (options from the kernelspec schema), every subcommand, bad
input refused with exit 2 and a message naming the problem, and the one exit-code table."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from sshpyk import cli
from sshpyk.cli import parser as cli_parser
from sshpyk.cli import sections
from sshpyk.cli.exitcodes import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_USAGE,
    UsageError,
    exit_code,
    message,
)
from sshpyk.demo import DemoError
from sshpyk.errors import (
    Conflict,
    KernelSpecConflict,
    KernelSpecError,
    KernelSpecNotFound,
    NotAnSSHKernel,
    Refused,
    SSHConnectError,
    SSHPykError,
)
from sshpyk.kernelspecs import kernels_dir
from sshpyk.model import OBJECT_FIELDS, InvalidField, schema

REQUIRED = {
    "--kernel-name": "k",
    "--display-name": "K",
    "--language": "python",
    "--ssh-host-alias": "remote",
    "--remote-python-prefix": "/opt/env",
    "--remote-kernel-name": "python3",
}


@pytest.fixture(autouse=True)
def root_logger():
    """``main`` sets up the root logger as the program's: put it back for the next tests."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def parse(*argv: str):
    return cli_parser.build_parser().parse_args(list(argv))


def subparser(command: str):
    parser = cli_parser.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[command]


def test_options_are_the_schema_fields():
    props = schema()["properties"]
    assert set(cli_parser.OPTIONS.values()) == set(props)
    for option, field in cli_parser.OPTIONS.items():
        assert option == "--" + field.replace("_", "-")


def test_option_kinds_follow_the_schema():
    props = schema()["properties"]
    actions = {a.dest: a for a in subparser("edit")._actions}
    for field, rule in props.items():
        if field in ("kernel_name", cli_parser.MOUNTS):
            continue
        action = actions[field]
        if "enum" in rule:
            assert list(action.choices) == rule["enum"], field
        if rule["type"] == "integer":
            assert action.type is int, field
    # edit changes only what it is given; add requires what the schema requires
    add = {a.dest: a for a in subparser("add")._actions}
    for field in props:
        assert add[field].required == (field in schema()["required"]), field
        assert not actions[field].required, field


def test_every_subcommand_has_a_runner_and_parses():
    parser = cli_parser.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(cli.COMMANDS)
    argvs = {
        "list": ["list", "-r", "--no-check", "--json", "--timeout", "3"],
        "add": ["add", *[x for kv in REQUIRED.items() for x in kv], "--replace"],
        "edit": ["edit", "k", "--lease-timeout", "600", "--clear", "ssh_config"],
        "delete": ["delete", "k"],
        "check": ["check", "--kernel-name", "k", "--json"],
        "ps": ["ps", "--json"],
        "reap": ["reap", "remote", "--all", "--remote-python-prefix", "/opt/env"],
        "demo": ["demo", "--stop"],
        "login": ["login", "otp", "--ssh-config", "/tmp/cfg"],
        "logout": ["logout", "otp"],
        "discover": ["discover", "remote", "--add", "/p", "--add", "m/1", "--name-prefix", "x"],
    }
    assert set(argvs) == set(cli.COMMANDS)
    for command, argv in argvs.items():
        args = parse(*argv)
        assert args.command == command
    assert parse(*argvs["edit"]).lease_timeout == 600
    assert parse(*argvs["reap"]).all is True
    assert parse(*argvs["discover"]).add == ["/p", "m/1"]


def test_mounts_are_repeatable():
    args = parse(
        "edit", "k", "--mount-local-on-remote", "/a:/b", "--mount-local-on-remote", "/c:/d"
    )
    assert args.mount_local_on_remote == ["/a:/b", "/c:/d"]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["edit", "k", "--lease-timeout", "soon"], "--lease-timeout"),
        (["edit", "k", "--transport", "pigeon"], "--transport"),
        (["add", "--kernel-name", "k"], "--display-name"),  # required ones missing
        (["frobnicate"], "frobnicate"),
        (["reap"], "HOST_ALIAS"),
    ],
)
def test_bad_command_lines_exit_2_naming_the_problem(argv, words, capsys):
    assert cli.main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("sshpyk: ") and words in err, err


def test_the_kernel_name_once_and_only_once(capsys):
    assert cli.main(["delete", "k", "--kernel-name", "k"]) == EXIT_USAGE
    assert "not both" in capsys.readouterr().err
    assert cli.main(["check"]) == EXIT_USAGE
    assert "sshpyk check NAME" in capsys.readouterr().err


def test_refusals_of_the_store_exit_2(capsys):
    # the private (empty) Jupyter dirs of the unit tier: no such kernelspec
    assert cli.main(["delete", "nothere"]) == EXIT_USAGE
    assert "no kernelspec named 'nothere'" in capsys.readouterr().err
    bad = ["add", *[x for kv in {**REQUIRED, "--ssh-host-alias": "evil host"}.items() for x in kv]]
    assert cli.main(bad) == EXIT_USAGE
    assert "sshpyk: invalid ssh_host_alias: " in capsys.readouterr().err


@pytest.mark.parametrize(
    "exc, code",
    [
        (UsageError("x"), EXIT_USAGE),
        (InvalidField("f", "bad"), EXIT_USAGE),
        (Refused("x"), EXIT_USAGE),
        (KernelSpecError("x"), EXIT_USAGE),
        (KernelSpecNotFound("x"), EXIT_USAGE),
        (NotAnSSHKernel("x"), EXIT_USAGE),
        (Conflict("x"), EXIT_USAGE),
        (KernelSpecConflict("x"), EXIT_USAGE),
        (SSHPykError("x"), EXIT_FAILED),
        (SSHConnectError("x"), EXIT_FAILED),
        (DemoError("x"), EXIT_FAILED),
        (RuntimeError("x"), EXIT_FAILED),
        (OSError("x"), EXIT_FAILED),
    ],
)
def test_exit_code_table(exc, code):
    assert exit_code(exc) == code


def test_exit_code_table_lists_subclasses_before_their_bases():
    classes = [cls for cls, _ in EXIT_CODES]
    for i, cls in enumerate(classes):
        for later in classes[i + 1 :]:
            assert not issubclass(later, cls), f"{later.__name__} is shadowed by {cls.__name__}"


def test_messages():
    assert message(InvalidField("lease_timeout", "too short")) == (
        "sshpyk: invalid lease_timeout: too short"
    )
    assert message(KernelSpecNotFound("no kernelspec named 'x'")) == (
        "sshpyk: no kernelspec named 'x'"
    )


def test_main_maps_what_a_command_raises(monkeypatch, capsys):
    def broken(args):
        raise SSHConnectError("host 'remote' is unreachable: Connection refused")

    monkeypatch.setitem(cli.COMMANDS, "ps", broken)
    assert cli.main(["ps"]) == EXIT_FAILED
    assert capsys.readouterr().err == "sshpyk: host 'remote' is unreachable: Connection refused\n"

    def refused(args):
        raise Conflict("kernel busy")

    monkeypatch.setitem(cli.COMMANDS, "ps", refused)
    assert cli.main(["ps"]) == EXIT_USAGE


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_python_dash_m():
    r = subprocess.run(
        [sys.executable, "-m", "sshpyk.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout.startswith("sshpyk "), r.stderr


# ---- Slurm: --slurm and one --slurm-* option per member of the schema's slurm object ------


def test_slurm_options_are_the_members_of_the_schema():
    members = schema()["properties"]["slurm"]["properties"]
    assert set(cli_parser.SLURM_OPTIONS.values()) == set(members)
    assert cli_parser.SLURM_OPTIONS["--slurm-option"] == "sbatch_options"
    assert cli_parser.SLURM_OPTIONS["--slurm-cpus"] == "cpus"
    assert cli_parser.SLURM_OPTIONS["--slurm-walltime-warning"] == "walltime_warning"
    for command in ("add", "edit"):
        dests = {a.dest for a in subparser(command)._actions}
        assert {f"slurm_{m}" for m in members} | {"slurm"} <= dests, command
    assert "no_slurm" in {a.dest for a in subparser("edit")._actions}


def test_slurm_options_parse():
    args = parse(
        "edit", "k",
        "--slurm-partition", "gpu", "--slurm-time", "8:00:00", "--slurm-cpus", "4",
        "--slurm-mem", "16G", "--slurm-gpus", "a100:1", "--slurm-account", "proj",
        "--slurm-qos", "short", "--slurm-constraint", "intel&gpu",
        "--slurm-option=--exclusive", "--slurm-option=--gres=gpu:1",
        "--slurm-walltime-warning", "5",
    )  # fmt: skip
    assert args.slurm is None  # implied by the others, not given
    assert (args.slurm_partition, args.slurm_time, args.slurm_cpus) == ("gpu", "8:00:00", 4)
    assert args.slurm_sbatch_options == ["--exclusive", "--gres=gpu:1"]
    assert args.slurm_walltime_warning == 5 and args.slurm_constraint == "intel&gpu"
    assert parse("edit", "k", "--slurm").slurm is True
    assert parse("edit", "k", "--no-slurm").no_slurm is True


def test_a_slurm_option_after_a_space_says_to_write_it_with_equals(capsys):
    assert cli.main(["edit", "k", "--slurm-option", "--exclusive"]) == EXIT_USAGE
    assert "--slurm-option=--NAME[=VALUE]" in capsys.readouterr().err
    assert cli.main(["edit", "k", "--slurm-cpus", "many"]) == EXIT_USAGE
    assert "--slurm-cpus" in capsys.readouterr().err


def _config(name: str = "k") -> dict:
    raw = json.loads((kernels_dir() / name / "kernel.json").read_text())
    return raw["metadata"]["kernel_provisioner"]["config"]


def test_slurm_from_the_cli_round_trip(capsys):
    add = ["add", *[x for kv in REQUIRED.items() for x in kv]]
    assert cli.main([*add, "--slurm-partition", "gpu", "--slurm-option=--comment=$(id)"]) == 0
    cfg = _config()
    assert cfg["slurm"] == {"partition": "gpu", "sbatch_options": ["--comment=$(id)"]}
    assert cfg["channels"] == "relay"  # chosen for a Slurm kernel
    capsys.readouterr()

    assert cli.main(["list", "--no-check", "-r"]) == 0
    out = capsys.readouterr().out
    assert "a compute node, in a Slurm job (partition gpu)" in out
    assert "--partition=gpu '--comment=$(id)'" in out  # one quoted word

    # members change one by one; the options given replace the kernel's
    assert cli.main(["edit", "k", "--slurm-time", "2:00:00", "--slurm-option=--exclusive"]) == 0
    assert _config()["slurm"] == {
        "partition": "gpu",
        "time": "2:00:00",
        "sbatch_options": ["--exclusive"],
    }
    cleared = ["--clear", "slurm.partition", "--clear", "slurm.sbatch_options"]
    assert cli.main(["edit", "k", *cleared]) == 0
    assert _config()["slurm"] == {"time": "2:00:00"}

    # refused edits name the field and leave the file as it was
    before = _config()
    for argv, words in (
        (["--slurm-option=--wrap=id"], "slurm.sbatch_options[0]: --wrap is not allowed"),
        (["--slurm-option=--partition=x"], "use the field 'partition'"),
        (["--slurm-time", "soon"], "slurm.time: 'soon' is not a Slurm time"),
        (["--channels", "forward"], "invalid channels: a Slurm kernel needs channels 'relay'"),
        (["--mount-local-on-remote", "/tmp:/x"], "not supported on Slurm kernels yet"),
        (["--clear", "slurm.colour"], "unknown Slurm setting"),
        (["--no-slurm", "--slurm-cpus", "2"], "--no-slurm turns Slurm off"),
    ):
        assert cli.main(["edit", "k", *argv]) == EXIT_USAGE, argv
        assert words in capsys.readouterr().err, argv
    assert _config() == before

    assert cli.main(["edit", "k", "--no-slurm"]) == 0
    assert "slurm" not in _config() and _config()["channels"] == "relay"
    assert cli.main(["edit", "k", "--clear", "slurm.time"]) == EXIT_USAGE
    assert "does not run under Slurm" in capsys.readouterr().err

    # a forward kernel turned into a Slurm one gets relay channels with it
    assert cli.main(["edit", "k", "--channels", "forward"]) == 0
    assert cli.main(["edit", "k", "--slurm"]) == 0
    assert _config()["slurm"] == {} and _config()["channels"] == "relay"


def test_env_and_prelude_from_the_cli_round_trip(capsys):
    add = ["add", *[x for kv in REQUIRED.items() for x in kv]]
    argv = [*add, "--env", "OMP_NUM_THREADS=4", "--env", "A=x=y", "--prelude", "module load py"]
    assert cli.main([*argv, "--prelude", "conda activate ml", "--remote-cwd", "~/work"]) == 0
    raw = json.loads((kernels_dir() / "k" / "kernel.json").read_text())
    assert raw["env"] == {"OMP_NUM_THREADS": "4", "A": "x=y"}  # kernel.json's own env
    assert _config()["prelude"] == ["module load py", "conda activate ml"]
    assert _config()["remote_cwd"] == "~/work"
    # --env adds and replaces; --prelude replaces the lines
    assert cli.main(["edit", "k", "--env", "A=1", "--prelude", "module load py/3.12"]) == 0
    raw = json.loads((kernels_dir() / "k" / "kernel.json").read_text())
    assert raw["env"] == {"OMP_NUM_THREADS": "4", "A": "1"}
    assert _config()["prelude"] == ["module load py/3.12"]
    assert cli.main(["edit", "k", "--clear", "env", "--clear", "prelude"]) == 0
    raw = json.loads((kernels_dir() / "k" / "kernel.json").read_text())
    assert "env" not in raw and "prelude" not in _config()
    capsys.readouterr()
    # bad input: nothing written, the field named
    assert cli.main(["edit", "k", "--env", "NOEQUALS"]) == EXIT_USAGE
    assert cli.main(["edit", "k", "--env", "1X=y"]) != 0
    assert "env.1X" in capsys.readouterr().err


def test_every_invalid_field_gets_its_own_line(capsys):
    add = ["add", *[x for kv in REQUIRED.items() for x in kv]]
    assert cli.main([*add, "--remote-cwd", "relative", "--env", "1X=y"]) == EXIT_USAGE
    err = [line for line in capsys.readouterr().err.splitlines() if "invalid" in line]
    assert err == [
        "sshpyk: invalid remote_cwd: 'relative' must be absolute or start with '~/'",
        "sshpyk: invalid env.1X: is not a variable name (letters, digits and _)",
    ]


# ---- every optional section alike (model.OBJECT_FIELDS): the container --------------------


@pytest.mark.parametrize("section", OBJECT_FIELDS)
def test_each_section_has_its_options_from_the_schema(section):
    members = schema()["properties"][section]["properties"]
    options = sections.OPTIONS[section]
    assert set(options.values()) == set(members)
    for command in ("add", "edit"):
        acts = {a.dest: a for a in subparser(command)._actions}
        assert {f"{section}_{m}" for m in members} | {section} <= set(acts), command
        for option, member in options.items():
            assert acts[f"{section}_{member}"].option_strings == [option]
            assert not acts[f"{section}_{member}"].required
    assert f"no_{section}" in {a.dest for a in subparser("edit")._actions}


def test_the_container_options_by_name():
    assert sections.OPTIONS["container"] == {
        "--container-runtime": "runtime",
        "--container-image": "image",
        "--container-python": "python",
        "--container-option": "options",
    }
    assert set(sections.LIST_OPTIONS) == {"--slurm-option", "--container-option"}
    args = parse(
        "edit", "k", "--container-runtime", "podman", "--container-image", "python:3.11",
        "--container-python", "/usr/bin/python3",
        "--container-option=--gpus=all", "--container-option=-e",
    )  # fmt: skip
    assert args.container is None  # implied by the others, not given
    assert (args.container_runtime, args.container_image) == ("podman", "python:3.11")
    assert args.container_python == "/usr/bin/python3"
    assert args.container_options == ["--gpus=all", "-e"]
    assert parse("edit", "k", "--container").container is True
    assert parse("edit", "k", "--no-container").no_container is True


def test_bad_container_command_lines_exit_2(capsys):
    assert cli.main(["edit", "k", "--container-option", "--nv"]) == EXIT_USAGE
    assert "--container-option=--NAME[=VALUE]" in capsys.readouterr().err
    assert cli.main(["edit", "k", "--container-runtime", "lxc"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--container-runtime" in err and "apptainer" in err


def test_container_from_the_cli_round_trip(capsys):
    add = ["add", *[x for kv in REQUIRED.items() for x in kv]]
    # a container needs its runtime and image, named with their options; nothing written
    assert cli.main([*add, "--container-image", "python:3.11"]) == EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == [
        "sshpyk: invalid container.runtime: is required: give --container-runtime "
        "(apptainer, singularity, podman, docker)"
    ]
    assert cli.main([*add, "--container"]) == EXIT_USAGE
    assert len(capsys.readouterr().err.splitlines()) == 2  # runtime and image
    # the model's own checks, in words, naming the member
    for argv, words in (
        (["--container-image=-x"], "invalid container.image: '-x' starts with '-'"),
        (["--container-image", "a b"], "invalid container.image: 'a b' is not an image"),
        (["--container-image", "i", "--container-option=--name=foo"],
         "invalid container.options[0]: --name is not allowed: sshpyk names the container"),
        (["--container-image", "i", "--container-python", "py;id"],
         "invalid container.python: 'py;id' is not a command or a path"),
    ):  # fmt: skip
        assert cli.main([*add, "--container-runtime", "docker", *argv]) == EXIT_USAGE, argv
        assert words in capsys.readouterr().err, argv
    assert not (kernels_dir() / "k").exists()

    # apptainer is the runtime's default: kept all the same (it is required)
    opts = ["--container-option=--nv", "--container-option=--bind=/scratch"]
    argv = [*add, "--container-runtime", "apptainer", "--container-image", "~/ml.sif", *opts]
    assert cli.main(argv) == 0
    cfg = _config()
    assert cfg["container"] == {
        "runtime": "apptainer",
        "image": "~/ml.sif",
        "options": ["--nv", "--bind=/scratch"],
    }
    assert "channels" not in cfg  # a container changes nothing else
    capsys.readouterr()
    assert cli.main(["list", "--no-check", "-r"]) == 0
    out = capsys.readouterr().out
    for line in (
        "Container:            apptainer",
        "  Image:              ~/ml.sif",
        "  Python:             python3",
        "  Runtime Options:    --nv --bind=/scratch",
    ):
        assert line in out.splitlines(), out

    # members change one by one; the options given replace the kernel's
    argv = ["edit", "k", "--container-python", "/opt/py/bin/python", "--container-option=-e"]
    assert cli.main(argv) == 0
    assert _config()["container"] == {
        "runtime": "apptainer",
        "image": "~/ml.sif",
        "python": "/opt/py/bin/python",
        "options": ["-e"],
    }
    assert cli.main(["edit", "k", "--clear", "container.options"]) == 0
    assert cli.main(["edit", "k", "--container-runtime", "podman"]) == 0
    assert _config()["container"] == {
        "runtime": "podman",
        "image": "~/ml.sif",
        "python": "/opt/py/bin/python",
    }

    # refused edits name the field and leave the file as it was
    before = _config()
    for argv, words in (
        (["--container-image=-x"], "container.image: '-x' starts with '-'"),
        (["--container-option=--name=foo"], "container.options[0]: --name is not allowed"),
        (["--container-option=--network=none"], "the kernel shares the host's network"),
        (["--clear", "container.image"], "container.image: is required: give --container-image"),
        (["--clear", "container.colour"], "unknown container setting"),
        (["--no-container", "--container-python", "x"], "--no-container turns the container off"),
    ):
        assert cli.main(["edit", "k", *argv]) == EXIT_USAGE, argv
        assert words in capsys.readouterr().err, argv
    assert _config() == before

    # --clear container with members: a new container, nothing kept from the old one
    argv = ["--clear", "container", "--container-runtime", "docker", "--container-image", "i:1"]
    assert cli.main(["edit", "k", *argv]) == 0
    assert _config()["container"] == {"runtime": "docker", "image": "i:1"}

    assert cli.main(["edit", "k", "--no-container"]) == 0
    assert "container" not in _config()
    assert cli.main(["edit", "k", "--clear", "container.python"]) == EXIT_USAGE
    assert "'k' has no container: nothing to clear" in capsys.readouterr().err
    # a kernel without a container given only its python: what else it needs, in words
    assert cli.main(["edit", "k", "--container-python", "python3.12"]) == EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == [
        "sshpyk: invalid container.runtime: is required ('k' has no container yet): "
        "give --container-runtime (apptainer, singularity, podman, docker)",
        "sshpyk: invalid container.image: is required ('k' has no container yet): "
        "give --container-image",
    ]
    assert "container" not in _config()
    argv = ["--container-runtime", "singularity", "--container-image", "docker://python:3.11"]
    assert cli.main(["edit", "k", *argv]) == 0
    assert _config()["container"] == {"runtime": "singularity", "image": "docker://python:3.11"}


def test_a_container_and_slurm_together(capsys):
    add = ["add", *[x for kv in REQUIRED.items() for x in kv]]
    argv = ["--slurm-partition", "gpu", "--container-runtime", "apptainer"]
    assert cli.main([*add, *argv, "--container-image", "~/ml.sif"]) == 0
    cfg = _config()
    assert cfg["slurm"] == {"partition": "gpu"} and cfg["channels"] == "relay"
    assert cfg["container"] == {"runtime": "apptainer", "image": "~/ml.sif"}
    # each section's options touch only their own section
    assert cli.main(["edit", "k", "--no-slurm", "--container-option=--nv"]) == 0
    cfg = _config()
    assert "slurm" not in cfg
    assert cfg["container"] == {"runtime": "apptainer", "image": "~/ml.sif", "options": ["--nv"]}
