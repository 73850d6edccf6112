"""The command line: one argparse parser, its options for the kernelspec's fields derived
from the schema.  Parsing only: which function runs a command is ``sshpyk.cli.COMMANDS``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import __version__
from ..model import OBJECT_FIELDS, schema
from .exitcodes import UsageError
from .sections import LIST_OPTIONS, SLURM, dest, kinds, words
from .sections import OPTIONS as SECTION_OPTIONS


# Every field of the kernelspec schema is an option named after it (lease_timeout ->
# --lease-timeout), for add and edit: a field added to the schema is an option at once and
# can never be forgotten here (tests/integration/test_cli_options.py walks the schema to make sure).
def option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


OPTIONS = {option_name(field): field for field in schema()["properties"]}
MOUNTS = "mount_local_on_remote"  # a list: repeatable --mount-local-on-remote /L:/R[:...]
# the optional sections (slurm, container): --SECTION, one --SECTION-MEMBER option per member
# (``sections``); SLURM_OPTIONS: option -> member of slurm, each kept in the dest "slurm_MEMBER"
SLURM_OPTIONS = SECTION_OPTIONS[SLURM]


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 too; keep our prefix and wording
        self.print_usage(sys.stderr)
        for opt in LIST_OPTIONS:
            if opt in message and "expected one argument" in message:
                # argparse takes "--exclusive" after a space for an option of its own
                message += f"; write it with '=': {opt}=--NAME[=VALUE]"
                break
        raise UsageError(message)


def _add_model_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    props = schema()["properties"]
    req = set(schema()["required"]) if required else set()
    for opt, key in OPTIONS.items():
        if key == "kernel_name":  # names the kernel: each command takes it its own way
            continue
        rule = props[key]
        if key in OBJECT_FIELDS:
            _add_section_options(p, key)
            continue
        if key == ENV:
            p.add_argument(
                opt,
                dest=key,
                action="append",
                type=env_pair,
                metavar="NAME=VALUE",
                help=_help(rule) + " Repeatable; on edit each one is added or replaced "
                "(--clear env removes them all).",
            )
            continue
        if key == PRELUDE:
            p.add_argument(
                opt,
                dest=key,
                action="append",
                metavar="LINE",
                help=_help(rule) + " Repeatable, in order; on edit the lines given replace "
                "the kernel's (--clear prelude removes them).",
            )
            continue
        if key == MOUNTS:
            p.add_argument(
                opt,
                dest=key,
                action="append",
                metavar="/LOCAL:/REMOTE[:OPTIONS][:optional]",
                help="mount a local directory on the remote host (repeatable); ':optional' "
                "starts the kernel even when the mount fails",
            )
            continue
        kinds = set(rule["type"] if isinstance(rule["type"], list) else [rule["type"]])
        kw: dict[str, Any] = {"dest": key, "required": key in req}
        if kinds == {"integer"}:
            kw["type"] = int
            kw["metavar"] = "S" if key.endswith("_timeout") else "N"
        elif kinds <= {"string", "null"}:
            kw["type"] = str
        else:  # a new kind of field needs its own option: fail loudly, not silently skip it
            raise TypeError(f"no command-line option for schema field {key!r} ({rule['type']})")
        if "enum" in rule:
            kw["choices"] = rule["enum"]
        kw["help"] = _help(rule)
        p.add_argument(opt, **kw)


ENV, PRELUDE = "env", "prelude"


def env_pair(text: str) -> tuple[str, str]:
    """``--env NAME=VALUE`` (the model checks the name and the value)."""
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def _help(rule: dict) -> str:
    notes = []
    if "minimum" in rule:
        notes.append(f"{rule['minimum']}-{rule['maximum']}")
    if rule.get("default") not in (None, [], {}):
        notes.append(f"default {rule['default']}")
    return rule.get("description", "") + (f" ({', '.join(notes)})" if notes else "")


def _add_section_options(p: argparse.ArgumentParser, section: str) -> None:
    """``--SECTION`` and one option per member of an optional section (``sections``)."""
    rule, said = schema()["properties"][section], words(section)
    g = p.add_argument_group(rule.get("title", section), said.group)
    g.add_argument(f"--{section}", dest=section, action="store_true", default=None, help=said.on)
    for opt, member in SECTION_OPTIONS[section].items():
        sub = rule["properties"][member]
        types = kinds(sub)
        kw: dict[str, Any] = {"dest": dest(section, member), "help": _help(sub)}
        if "array" in types:
            kw.update(action="append", metavar="--NAME[=VALUE]")
            kw["help"] = kw["help"].rstrip(".") + (
                f"; repeatable, written with '=' since the value starts with '-', e.g. "
                f"{opt}=--NAME or {opt}=--NAME=VALUE (on edit, the options given replace "
                "the kernel's)"
            )
        elif types <= {"integer", "null"}:
            # "Warn before the time limit (min)": minutes
            minutes = sub.get("title", "").endswith("(min)")
            kw.update(type=int, metavar="MIN" if minutes else "N")
        elif types <= {"string", "null"}:
            kw.update(type=str, metavar=member.upper())
            if "enum" in sub:
                kw["choices"] = sub["enum"]
        else:  # as for the top-level fields: never skip a member silently
            raise TypeError(f"no command-line option for {section} member {member!r}")
        g.add_argument(opt, **kw)


def _add_name(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="the kernel name")
    p.add_argument("--kernel-name", dest="kernel_name", help="the same as NAME (older form)")


def build_parser() -> Parser:
    parser = Parser(
        prog="sshpyk", description="Remote Jupyter kernels over SSH, as if they were local."
    )
    parser.add_argument("--version", action="version", version=f"sshpyk {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="-v warnings, -vv info, -vvv debug"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("list", help="list local and SSH kernels, checking the SSH ones")
    p.add_argument("-r", "--remote", action="store_true", help="only SSH kernels")
    p.add_argument("-l", "--local", action="store_true", help="only local kernels")
    p.add_argument("-n", "--no-check", action="store_true", help="skip the remote checks")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--timeout",
        type=int,
        default=20,
        metavar="S",
        help="seconds each host gets to answer its checks (default 20); a host that does not "
        "answer delays only its own kernels, listed last",
    )

    p = sub.add_parser("add", help="add an SSH kernel")
    p.add_argument(
        "--kernel-name",
        dest="kernel_name",
        required=True,
        help="name of the new kernelspec (^[a-z0-9._-]+$)",
    )
    _add_model_options(p, required=True)
    p.add_argument("--replace", action="store_true", help="overwrite an SSH kernel of that name")

    p = sub.add_parser("edit", help="change an SSH kernel")
    _add_name(p)
    _add_model_options(p, required=False)
    p.add_argument(
        "--clear",
        action="append",
        metavar="FIELD",
        help="put an optional field back to its default, e.g. --clear ssh_config; "
        "SECTION.MEMBER clears one setting of a section, e.g. --clear slurm.time, "
        "--clear container.options",
    )
    for section in OBJECT_FIELDS:
        p.add_argument(f"--no-{section}", action="store_true", help=words(section).off)
    p.add_argument(
        "--remove-mount",
        action="append",
        metavar="/REMOTE",
        help="remove the mount at this remote path",
    )
    p.add_argument("--remove-mounts", action="store_true", help="remove every mount")

    p = sub.add_parser("delete", help="delete an SSH kernel (never a local one)")
    _add_name(p)

    p = sub.add_parser("check", help="run every remote check of one SSH kernel")
    _add_name(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=int, default=20, help=argparse.SUPPRESS)

    p = sub.add_parser("ps", help="SSH kernels started from this machine that still run")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "reap",
        help="end a host's SSH kernels that nothing uses any more and clear their leftovers",
    )
    p.add_argument("host_alias", metavar="HOST_ALIAS")
    p.add_argument("--ssh-config", dest="ssh_config")
    p.add_argument("--ssh")
    p.add_argument("--remote-python-prefix", dest="remote_python_prefix")
    p.add_argument(
        "--all", action="store_true", help="end every sshpyk kernel there, even ones in use"
    )

    for name, what in (
        ("login", "log in to a host that asks for a password, a code or a host key, once"),
        ("logout", "end the login (the master) to a host; its kernels keep running"),
    ):
        p = sub.add_parser(name, help=what)
        p.add_argument("host_alias", metavar="HOST_ALIAS")
        p.add_argument("--ssh-config", dest="ssh_config")
        p.add_argument("--ssh")

    p = sub.add_parser(
        "discover",
        help="list a host's Python environments (conda, venvs, modules); --add makes kernels",
    )
    p.add_argument("host_alias", metavar="HOST_ALIAS")
    p.add_argument("--ssh-config", dest="ssh_config")
    p.add_argument("--ssh")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--timeout",
        type=int,
        default=30,
        metavar="S",
        help="seconds the host gets to list and probe its environments (default 30)",
    )
    p.add_argument(
        "--add",
        action="append",
        metavar="PREFIX",
        help="make an SSH kernelspec for the environment at PREFIX (repeatable; it needs "
        "ipykernel); for a module, its name",
    )
    p.add_argument(
        "--name-prefix",
        dest="name_prefix",
        metavar="NAME",
        help="the kernels --add makes are NAME-<environment> (default: the host alias)",
    )

    p = sub.add_parser("demo", help="a private loopback sshd and an SSH kernel to try sshpyk")
    p.add_argument("--stop", action="store_true", help="remove the demo sandbox and its kernel")
    return parser
