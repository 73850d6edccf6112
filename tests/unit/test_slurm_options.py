"""``sshpyk.slurm_options`` and the kernelspec's ``slurm`` object in the model: which sbatch
options pass and why the others do not, the field checks, the sbatch flags, and what a Slurm
kernel cannot have with it — pure logic, no Slurm."""

from __future__ import annotations

import re
import shlex

import pytest

from sshpyk import slurm_options as so
from sshpyk.model import InvalidField, SSHKernelConfig, schema, validate

BASE = {
    "kernel_name": "ssh-hpc",
    "display_name": "Python (cluster)",
    "language": "python",
    "ssh_host_alias": "login",
    "remote_python_prefix": "/opt/env",
    "remote_kernel_name": "python3",
}


def opt_refused(value: str, *words: str) -> str:
    with pytest.raises(InvalidField) as e:
        so.check_sbatch_option("slurm.sbatch_options[0]", value)
    assert e.value.field == "slurm.sbatch_options[0]"
    for w in words:
        assert w in e.value.message, e.value.message
    return e.value.message


def slurm_refused(slurm, field: str, *words: str, **more) -> str:
    with pytest.raises(InvalidField) as e:
        validate(dict(BASE, slurm=slurm, **more))
    assert e.value.field == field, e.value
    for w in words:
        assert w in e.value.message, e.value.message
    return e.value.message


# ---- sbatch_options: the allowlist -------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "--gres=gpu:1",
        "--nodelist=node[1-3]",
        "--exclude=node7",
        "--reservation=course",
        "--exclusive",
        "--exclusive=user",
        "--mem-per-cpu=2G",
        "--mem-per-gpu=16G",
        "--gpus-per-node=2",
        "--cpus-per-gpu=8",
        "--licenses=matlab:1",
        "--tmp=10G",
        "--comment=notebook",
        "--mail-type=END,FAIL",
        "--mail-user=me@example.org",
        "--nice",
        "--nice=100",
        "--begin=now+1hour",
        "--deadline=2026-12-01T12:00",
        "--hint=nomultithread",
        "--no-requeue",
        "--oversubscribe",
    ],
)
def test_resource_and_placement_options_pass(value):
    so.check_sbatch_option("o", value)
    assert validate(dict(BASE, slurm={"sbatch_options": [value]}))["slurm"]["sbatch_options"] == [
        value
    ]


def test_every_allowed_option_is_known_and_refused_ones_are_not_allowed():
    assert not set(so.ALLOWED) & set(so.REFUSED)
    assert not set(so.ALLOWED) & set(so.FIELD_OPTIONS)
    assert not set(so.REFUSED) & set(so.FIELD_OPTIONS)
    assert set(so.ALLOWED.values()) <= {"value", "flag", "optional"}


@pytest.mark.parametrize(
    "value, words",
    [
        # run a program or change what runs
        ("--wrap=id", "runs a program"),
        ("--export=ALL,LD_PRELOAD=/tmp/x.so", "runs a program"),
        ("--export-file=/tmp/env", "runs a program"),
        ("--get-user-env", "runs a program"),
        ("--container=/tmp/bundle", "runs a program"),
        ("--bb=capacity=1G", "runs a program"),
        ("--bbf=/tmp/bb", "runs a program"),
        ("--burst-buffer=x", "runs a program"),
        # another user
        ("--uid=0", "another user"),
        ("--gid=0", "another user"),
        # files elsewhere
        ("--output=/tmp/log", "files"),
        ("--error=/tmp/err", "files"),
        ("--input=/etc/passwd", "files"),
        ("--open-mode=append", "files"),
        ("--chdir=/tmp", "directory"),
        ("--nodefile=/tmp/nodes", "files"),
        # sshpyk's control of the job
        ("--job-name=x", "names the job"),
        ("--parsable", "reads the job id"),
        ("--wait", "hang"),
        ("--array=1-10", "one kernel is one job"),
        ("--signal=USR1@60", "walltime_warning"),
        ("--test-only", "submits nothing"),
        ("--clusters=other", "another cluster"),
        ("--hold", "never starts"),
        ("--requeue", "requeued"),
        ("--dependency=afterok:1", "wait for other jobs"),
        ("--ntasks=4", "one task on one node"),
        ("--nodes=2", "one task on one node"),
        ("--quiet", "sbatch's answer"),
    ],
)
def test_refused_options_say_which_and_why(value, words):
    name = value[2:].split("=")[0]
    msg = opt_refused(value, f"--{name} is not allowed", words)
    # the model refuses it too, naming the entry
    with pytest.raises(InvalidField) as e:
        validate(dict(BASE, slurm={"sbatch_options": ["--exclusive", value]}))
    assert e.value.field == "slurm.sbatch_options[1]" and e.value.message == msg


@pytest.mark.parametrize(
    "value, field",
    [
        ("--partition=gpu", "partition"),
        ("--time=1:00:00", "time"),
        ("--cpus-per-task=4", "cpus"),
        ("--mem=4G", "mem"),
        ("--gpus=1", "gpus"),
        ("--account=proj", "account"),
        ("--qos=short", "qos"),
        ("--constraint=intel", "constraint"),
    ],
)
def test_options_of_a_field_point_to_the_field(value, field):
    opt_refused(value, "is a field of its own", f"use the field {field!r}")


@pytest.mark.parametrize("value", ["--frobnicate", "--wra=id", "--outp=/tmp/x", "--x11"])
def test_unknown_options_and_abbreviations_are_not_passed_on(value):
    # getopt_long would take "--wra" as "--wrap": an abbreviation is never on the allowlist
    opt_refused(value, "not an sbatch option sshpyk passes on", "ALLOWED")


@pytest.mark.parametrize(
    "case",
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("-p gpu", "not a long option", "-p is --partition"),
        ("-p", "not a long option", "-p is --partition"),
        ("-J=x", "not a long option", "--job-name"),
        ("-Z", "not a long option"),
        ("gres=gpu:1", "not a long option"),
        ("--partition gpu", "whitespace"),
        ("--comment=a b", "whitespace"),
        ("--comment=a\tb", "control characters"),
        ("--comment=x\n--wrap=id", "control characters"),
        ("--comment=x\x00", "control characters"),
        ("--", "--name[=value]"),
        ("--Gres=gpu", "--name[=value]"),
        ("---gres=gpu", "--name[=value]"),
        ("--comment=", "give a value after '='"),
        ("--comment=é", "printable ASCII"),
        ("--gres", "needs a value", "--gres=VALUE"),
        ("--reservation", "needs a value"),
        ("--no-requeue=1", "takes no value"),
        ("--nodelist=/home/me/nodes", "from a file"),
    ],
)
def test_malformed_entries_are_refused(case):
    value, *words = case
    opt_refused(value, *words)


def test_an_injection_attempt_stays_one_harmless_word():
    # allowed: a comment is text to Slurm, and the flag is one argv word the caller quotes
    for value in ("--comment=$(id)", "--comment=`id`", "--comment=a;id", "--comment='x'"):
        so.check_sbatch_option("o", value)
        (word,) = so.sbatch_flags({"sbatch_options": [value]})
        assert shlex.split(shlex.quote(word)) == [value]
        assert shlex.split(f"sbatch {shlex.quote(word)} --parsable")[1] == value


# ---- the fields ----------------------------------------------------------------------------


@pytest.mark.parametrize("time", ["90", "90:30", "8:00:00", "1-00", "2-12:30", "2-12:30:00", "0"])
def test_slurm_time_formats(time):
    assert validate(dict(BASE, slurm={"time": time}))["slurm"]["time"] == time


@pytest.mark.parametrize(
    "slurm, field, words",
    [
        ({"time": "1:2:3:4"}, "slurm.time", "not a Slurm time"),
        ({"time": "1h"}, "slurm.time", "D-HH:MM:SS"),
        ({"time": "1-"}, "slurm.time", "not a Slurm time"),
        ({"time": "-1"}, "slurm.time", "starts with '-'"),
        ({"time": 60}, "slurm.time", "must be of type string or null"),
        ({"partition": "gpu debug"}, "slurm.partition", "no spaces"),
        ({"partition": "-p"}, "slurm.partition", "starts with '-'"),
        ({"partition": "gpu;id"}, "slurm.partition", "not a partition name"),
        ({"partition": "a\nb"}, "slurm.partition", "control characters"),
        ({"partition": " "}, "slurm.partition", "blank"),
        ({"account": "$(id)"}, "slurm.account", "not a Slurm name"),
        ({"qos": "a,b"}, "slurm.qos", "not a Slurm name"),
        ({"cpus": 0}, "slurm.cpus", "from 1 to"),
        ({"cpus": "4"}, "slurm.cpus", "must be of type integer or null"),
        ({"cpus": True}, "slurm.cpus", "must be of type integer or null"),
        ({"mem": "4GB"}, "slurm.mem", "not an amount of memory"),
        ({"mem": "lots"}, "slurm.mem", "not an amount of memory"),
        ({"gpus": "0"}, "slurm.gpus", "at least 1"),
        ({"gpus": "a100:"}, "slurm.gpus", "not a GPU count"),
        ({"constraint": "intel;id"}, "slurm.constraint", "contains ';'"),
        ({"constraint": "a b"}, "slurm.constraint", "contains ' '"),
        ({"walltime_warning": -1}, "slurm.walltime_warning", "from 0 to 1440"),
        ({"walltime_warning": 1441}, "slurm.walltime_warning", "from 0 to 1440"),
        ({"sbatch_options": "--exclusive"}, "slurm.sbatch_options", "type array or null"),
        ({"sbatch_options": [3]}, "slurm.sbatch_options[0]", "type string"),
        ({"sbatch_options": ["--exclusive"] * 33}, "slurm.sbatch_options", "more than 32"),
        ({"colour": "blue"}, "slurm.colour", "unknown field"),
        ("gpu", "slurm", "must be of type object or null"),
    ],
)
def test_bad_slurm_fields_are_refused_by_name(slurm, field, words):
    slurm_refused(slurm, field, words)


def test_the_fields_the_schema_patterns_check_agree_with_the_checks():
    # the Lab form's own validation uses the patterns: a value the model accepts matches
    members = schema()["properties"]["slurm"]["properties"]
    good = {
        "partition": "gpu,debug",
        "time": "2-12:30:00",
        "mem": "500M",
        "gpus": "a100:2",
        "account": "proj-1.x",
        "qos": "short",
        "constraint": "[rack1|rack2]&gpu*2",
    }
    for key, value in good.items():
        assert re.fullmatch(members[key]["pattern"], value), key
        assert validate(dict(BASE, slurm={key: value}))["slurm"][key] == value
    assert re.fullmatch(members["sbatch_options"]["items"]["pattern"], "--gres=gpu:1")


# ---- the object in the model --------------------------------------------------------------


def test_no_slurm_is_the_default_and_an_empty_object_is_a_slurm_kernel():
    assert validate(dict(BASE))["slurm"] is None
    assert validate(dict(BASE))["channels"] == "forward"
    out = validate(dict(BASE, slurm={}))
    assert out["slurm"] == {
        "partition": None,
        "time": None,
        "cpus": None,
        "mem": None,
        "gpus": None,
        "account": None,
        "qos": None,
        "constraint": None,
        "sbatch_options": [],
        "walltime_warning": 10,
    }
    # null members are the defaults too, and validate does not change its input
    given = {"walltime_warning": None, "sbatch_options": None, "partition": "gpu"}
    out = validate(dict(BASE, slurm=given))["slurm"]
    assert out["walltime_warning"] == 10 and out["sbatch_options"] == [] and out["partition"]
    assert given["walltime_warning"] is None


def test_a_slurm_kernel_gets_relay_channels_and_refuses_forward():
    assert validate(dict(BASE, slurm={}))["channels"] == "relay"
    assert validate(dict(BASE, slurm={}, channels="relay"))["channels"] == "relay"
    slurm_refused(
        {}, "channels", "needs channels 'relay'", "no port to forward", channels="forward"
    )


def test_a_slurm_kernel_refuses_mounts_but_not_a_user_master():
    slurm_refused(
        {},
        "mount_local_on_remote",
        "SSHFS mounts are not supported on Slurm kernels yet",
        mount_local_on_remote=["/a:/b"],
    )
    assert validate(dict(BASE, slurm={}, ssh_master="user"))["ssh_master"] == "user"


def test_kernel_json_keeps_only_what_differs_and_reads_back():
    model = validate(dict(BASE, slurm={"partition": "gpu", "walltime_warning": 10}))
    config = {k: model[k] for k in SSHKernelConfig.__dataclass_fields__}
    cfg = SSHKernelConfig(**config)
    short = cfg.to_dict()
    assert short["slurm"] == {"partition": "gpu"} and short["channels"] == "relay"
    back = SSHKernelConfig.from_dict(short)
    assert back.slurm == model["slurm"] and back.channels == "relay"
    empty = SSHKernelConfig.from_dict({**short, "slurm": {}})
    assert empty.to_dict()["slurm"] == {}  # still a Slurm kernel, with the cluster's defaults
    assert "slurm" not in SSHKernelConfig.from_dict({**short, "slurm": None}).to_dict()


# ---- sbatch_flags ---------------------------------------------------------------------------


def test_sbatch_flags_of_every_field_then_the_options():
    slurm = validate(
        dict(
            BASE,
            slurm={
                "partition": "gpu",
                "time": "8:00:00",
                "cpus": 4,
                "mem": "16G",
                "gpus": "a100:1",
                "account": "proj",
                "qos": "short",
                "constraint": "intel&gpu",
                "sbatch_options": ["--exclusive", "--comment=my_notebook"],
                "walltime_warning": 5,
            },
        )
    )["slurm"]
    assert so.sbatch_flags(slurm) == [
        "--partition=gpu",
        "--time=8:00:00",
        "--cpus-per-task=4",
        "--mem=16G",
        "--gpus=a100:1",
        "--account=proj",
        "--qos=short",
        "--constraint=intel&gpu",
        "--exclusive",
        "--comment=my_notebook",
    ]


def test_sbatch_flags_of_the_defaults_are_none():
    assert so.sbatch_flags(validate(dict(BASE, slurm={}))["slurm"]) == []
    assert so.sbatch_flags({}) == []
    assert so.sbatch_flags({"time": "90", "sbatch_options": None}) == ["--time=90"]
