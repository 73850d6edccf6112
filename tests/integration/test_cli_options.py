"""Every field of the kernelspec schema can be set from the CLI, and every command that acts
on one kernel names it the same way (``NAME`` or ``--kernel-name NAME``)."""

from __future__ import annotations

import json

import pytest
from helpers import add_args, kernel_json, sshpyk

from sshpyk.cli import parser as cli
from sshpyk.model import OBJECT_FIELDS, schema


def _dests(command: str) -> dict[str, str]:
    """dest -> first option string of one subcommand's parser."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {a.dest: (a.option_strings or [a.dest])[0] for a in sub.choices[command]._actions}


@pytest.mark.parametrize("command", ["add", "edit"])
def test_every_schema_field_has_a_cli_option(command):
    # walks the schema itself: a field added to it without an option fails here
    dests = _dests(command)
    for field in schema()["properties"]:
        assert field in dests, f"schema field {field!r} has no option in 'sshpyk {command}'"
        if field != "kernel_name" or command == "add":
            assert dests[field] == "--" + field.replace("_", "-")


def test_a_schema_field_of_an_unknown_kind_breaks_the_parser_not_silently(monkeypatch):
    # pure logic: a new field the CLI cannot express must fail loudly, not go missing
    props = {**schema()["properties"], "new_flag": {"type": "boolean"}}
    monkeypatch.setitem(cli.OPTIONS, "--new-flag", "new_flag")
    monkeypatch.setattr(cli, "schema", lambda: {**schema(), "properties": props})
    with pytest.raises(TypeError, match="new_flag"):
        cli.build_parser()


def test_lease_and_lost_timeouts_from_the_cli(test_hosts, env):
    r = sshpyk(env, "add", *add_args(test_hosts), "--lease-timeout", "7200", "--lost-timeout", "30")
    assert r.returncode == 0, r.stderr
    cfg = kernel_json(env, "ssh-r")["metadata"]["kernel_provisioner"]["config"]
    assert cfg["lease_timeout"] == 7200 and cfg["lost_timeout"] == 30
    listed = json.loads(sshpyk(env, "list", "--json", "--no-check").stdout)
    (k,) = listed["ssh"]
    assert k["config"]["lease_timeout"] == 7200 and k["config"]["lost_timeout"] == 30
    text = sshpyk(env, "list", "--no-check", "--remote").stdout
    assert "Lease Timeout:" in text and "7200" in text and "Lost Timeout:" in text

    # out of the schema's range: exit 2, the file is untouched
    before = kernel_json(env, "ssh-r")
    for opt, value in (("--lease-timeout", "5"), ("--lost-timeout", "86401")):
        bad = sshpyk(env, "edit", "ssh-r", opt, value)
        assert bad.returncode == 2 and opt.strip("-").replace("-", "_") in bad.stderr
    assert kernel_json(env, "ssh-r") == before

    ed = sshpyk(env, "edit", "ssh-r", "--lost-timeout", "90", "--clear", "lease_timeout")
    assert ed.returncode == 0, ed.stderr
    cfg = kernel_json(env, "ssh-r")["metadata"]["kernel_provisioner"]["config"]
    assert cfg["lost_timeout"] == 90 and "lease_timeout" not in cfg  # back to the default


def test_check_edit_delete_take_the_name_alike(test_hosts, env):
    assert sshpyk(env, "add", *add_args(test_hosts)).returncode == 0
    chk = sshpyk(env, "check", "ssh-r")  # as 'delete NAME' always worked
    assert chk.returncode == 0, chk.stdout + chk.stderr
    assert "Connection (BatchMode)" in chk.stdout and "(x)" not in chk.stdout
    old = sshpyk(env, "check", "--kernel-name", "ssh-r", "--json")  # the older form
    assert old.returncode == 0 and json.loads(old.stdout)["name"] == "ssh-r"

    before = kernel_json(env, "ssh-r")
    for command, extra in (("check", []), ("edit", ["--display-name", "X"]), ("delete", [])):
        both = sshpyk(env, command, "ssh-r", "--kernel-name", "ssh-r", *extra)
        assert both.returncode == 2 and "not both" in both.stderr, both.stderr
        neither = sshpyk(env, command, *extra)
        assert neither.returncode == 2, neither.stderr
        assert f"sshpyk {command} NAME" in neither.stderr
    assert kernel_json(env, "ssh-r") == before  # nothing was run or written

    ed = sshpyk(env, "edit", "ssh-r", "--display-name", "Renamed")
    assert ed.returncode == 0, ed.stderr
    assert kernel_json(env, "ssh-r")["display_name"] == "Renamed"
    ed = sshpyk(env, "edit", "--kernel-name", "ssh-r", "--display-name", "Again")
    assert ed.returncode == 0 and kernel_json(env, "ssh-r")["display_name"] == "Again"
    assert sshpyk(env, "delete", "ssh-r").returncode == 0
    assert sshpyk(env, "check", "ssh-r").returncode == 2  # gone: bad input, not a failure


@pytest.mark.parametrize("section", OBJECT_FIELDS)
@pytest.mark.parametrize("command", ["add", "edit"])
def test_every_member_of_a_section_has_a_cli_option(command, section):
    # each member of an optional section (slurm, container) gets --SECTION-MEMBER, its list
    # of options --SECTION-option (--slurm-option=--exclusive, --container-option=--nv)
    dests = _dests(command)
    assert dests.get(section) == f"--{section}"
    for member, rule in schema()["properties"][section]["properties"].items():
        want = (
            f"--{section}-option"
            if "array" in rule["type"]
            else f"--{section}-" + member.replace("_", "-")
        )
        assert dests.get(f"{section}_{member}") == want, member
    if command == "edit":
        assert dests.get(f"no_{section}") == f"--no-{section}"


def test_a_container_from_the_command_line(env):
    # the installed command, as a user runs it; only files are written (no host is asked)
    add = [
        "add", "--kernel-name", "ctr", "--display-name", "In a container",
        "--language", "python", "--ssh-host-alias", "remote",
        "--remote-python-prefix", "/opt/env", "--remote-kernel-name", "python3",
    ]  # fmt: skip
    bad = sshpyk(env, *add, "--container-runtime", "docker", "--container-image=-x")
    assert bad.returncode == 2 and "invalid container.image: '-x' starts with '-'" in bad.stderr
    image = ["--container-runtime", "apptainer", "--container-image", "~/images/ml.sif"]
    r = sshpyk(env, *add, *image, "--container-option=--nv")
    assert r.returncode == 0, r.stderr

    def container():
        return kernel_json(env, "ctr")["metadata"]["kernel_provisioner"]["config"].get("container")

    assert container() == {"runtime": "apptainer", "image": "~/images/ml.sif", "options": ["--nv"]}
    shown = sshpyk(env, "list", "--no-check", "--remote").stdout
    assert "Container:" in shown and "apptainer" in shown and "--nv" in shown
    listed = json.loads(sshpyk(env, "list", "--json", "--no-check").stdout)
    assert listed["ssh"][0]["config"]["container"]["image"] == "~/images/ml.sif"

    ed = sshpyk(env, "edit", "ctr", "--container-python", "python3.11")
    assert ed.returncode == 0, ed.stderr
    assert container()["python"] == "python3.11" and container()["options"] == ["--nv"]
    before = kernel_json(env, "ctr")
    bad = sshpyk(env, "edit", "ctr", "--container-option=--name=foo")
    assert bad.returncode == 2 and "container.options[0]: --name is not allowed" in bad.stderr
    assert kernel_json(env, "ctr") == before
    assert sshpyk(env, "edit", "ctr", "--clear", "container.options").returncode == 0
    assert "options" not in container()
    assert sshpyk(env, "edit", "ctr", "--no-container").returncode == 0
    assert container() is None
    bad = sshpyk(env, "edit", "ctr", "--container-python", "python3")
    assert bad.returncode == 2 and "'ctr' has no container yet" in bad.stderr
