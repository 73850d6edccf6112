"""``sshpyk.cli``: the parser (options from the kernelspec schema), every subcommand, bad
input refused with exit 2 and a message naming the problem, and the one exit-code table."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from sshpyk import cli
from sshpyk.cli import parser as cli_parser
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
from sshpyk.model import InvalidField, schema

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
    }
    assert set(argvs) == set(cli.COMMANDS)
    for command, argv in argvs.items():
        args = parse(*argv)
        assert args.command == command
    assert parse(*argvs["edit"]).lease_timeout == 600
    assert parse(*argvs["reap"]).all is True


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
