"""What sshpyk passes to ``sbatch`` for a kernelspec's ``slurm`` object: the policy for its
``sbatch_options`` and the sbatch flags of a validated object.

``sbatch_options`` is an allowlist, not a denylist: an option is passed on only when it is a
known resource or placement option (``ALLOWED``, after sbatch 22.05's ``man sbatch``).  The
options a user is most likely to try get a refusal that says why (``REFUSED``): they would run
a program or change what runs, act as another user, write or read files sshpyk does not
control, break sshpyk's control of the job (it finds, watches and cancels the job, reads
sbatch's answer and talks to the kernel over the job's own steps), or duplicate a field.

sbatch reads its options with ``getopt_long``, which also takes an unambiguous abbreviation
(``--wra`` is ``--wrap``) and, for an option that needs a value, the NEXT argv word when no
``=value`` is given.  Hence: exact names only (an abbreviation is not on the allowlist), and
an option that needs a value must carry it as ``--name=value`` — every entry is one argv word
that never swallows the word after it.  Values are printable ASCII without whitespace, so an
entry is also safe in a ``#SBATCH`` line; the caller still shell-quotes each word.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InvalidField

# the policy's one-line pointer, for a refusal of an option it does not know
ALLOWLIST_HINT = "see sshpyk.slurm_options.ALLOWED (the README lists them)"

# name -> how it takes a value: "value" (needs =value), "flag" (none), "optional" (either)
ALLOWED: dict[str, str] = {
    # resources
    "gres": "value",
    "gres-flags": "value",
    "mem-per-cpu": "value",
    "mem-per-gpu": "value",
    "gpus-per-node": "value",
    "gpus-per-socket": "value",
    "gpus-per-task": "value",
    "cpus-per-gpu": "value",
    "mincpus": "value",
    "cores-per-socket": "value",
    "sockets-per-node": "value",
    "threads-per-core": "value",
    "extra-node-info": "value",
    "hint": "value",
    "licenses": "value",
    "tmp": "value",
    "mem-bind": "value",
    "cpu-freq": "value",
    "gpu-bind": "value",
    "gpu-freq": "value",
    # placement
    "nodelist": "value",
    "exclude": "value",
    "reservation": "value",
    "prefer": "value",
    "switches": "value",
    "exclusive": "optional",
    "oversubscribe": "flag",
    "contiguous": "flag",
    "spread-job": "flag",
    "use-min-nodes": "flag",
    "delay-boot": "value",
    # when and how it is scheduled, and what accounting and mail say
    "begin": "value",
    "deadline": "value",
    "time-min": "value",
    "nice": "optional",
    "no-requeue": "flag",
    "comment": "value",
    "wckey": "value",
    "mail-type": "value",
    "mail-user": "value",
}

_RUNS = "it runs a program or changes what the job runs; sshpyk decides what runs in the job"
_USER = "it would run the job as another user or group"
_FILES = (
    "it reads or writes files, or changes the directory, of the job; sshpyk keeps the job's "
    "input and output to itself (the kernel's output goes to the notebook)"
)
_SHAPE = "sshpyk runs one kernel: one task on one node"
_OUTPUT = "it changes what sbatch prints or makes it submit nothing; sshpyk reads sbatch's answer"

REFUSED: dict[str, str] = {
    **dict.fromkeys(
        (
            "wrap",
            "export",
            "export-file",
            "get-user-env",
            "container",
            "container-id",
            "bb",
            "bbf",
            "burst-buffer",
            "ignore-pbs",
            "propagate",
            "network",
            "reboot",
            "batch",
        ),
        _RUNS,
    ),
    **dict.fromkeys(("uid", "gid", "mcs-label"), _USER),
    **dict.fromkeys(("output", "error", "input", "open-mode", "chdir", "nodefile"), _FILES),
    **dict.fromkeys(("nodes", "ntasks", "ntasks-per-node", "ntasks-per-core"), _SHAPE),
    **dict.fromkeys(("ntasks-per-gpu", "ntasks-per-socket", "overcommit"), _SHAPE),
    **dict.fromkeys(("help", "usage", "version", "verbose", "quiet"), _OUTPUT),
    "job-name": "sshpyk names the job to find it again (squeue, re-attach, cleanup)",
    "parsable": "sshpyk passes it itself and reads the job id from it",
    "wait": "sbatch would not return until the job ends, and the launch would hang",
    "array": "one kernel is one job; an array would start many",
    "het-job": "one kernel is one job; a heterogeneous job is several",
    "signal": "sshpyk handles the time limit itself (walltime_warning); an early signal from "
    "Slurm could end the kernel",
    "test-only": "it submits nothing, so no kernel would start",
    "clusters": "the job would run on another cluster, where sshpyk cannot find or cancel it",
    "cluster-constraint": "the job would run on another cluster, where sshpyk cannot find or "
    "cancel it",
    "hold": "a held job never starts until someone releases it; the launch would wait in vain",
    "dependency": "the launch would wait for other jobs, perhaps for ever; submit the kernel "
    "when they are done",
    "kill-on-invalid-dep": "sshpyk does not submit kernels with dependencies",
    "requeue": "a requeued job starts again without the kernel it ran, which sshpyk cannot "
    "reach; the kernel ends instead (--no-requeue is allowed)",
    "no-kill": "sshpyk ends the job when the kernel's node fails, and says so",
    "priority": "only Slurm administrators may set it; use --nice",
}

# an option that duplicates a field of the slurm object -> the field
FIELD_OPTIONS = {
    "partition": "partition",
    "time": "time",
    "cpus-per-task": "cpus",
    "mem": "mem",
    "gpus": "gpus",
    "account": "account",
    "qos": "qos",
    "constraint": "constraint",
}

# sbatch's short options, to say which long one a user meant
SHORT = {
    "A": "account", "a": "array", "b": "begin", "B": "extra-node-info", "C": "constraint",
    "c": "cpus-per-task", "D": "chdir", "d": "dependency", "e": "error", "F": "nodefile",
    "G": "gpus", "H": "hold", "h": "help", "i": "input", "J": "job-name", "k": "no-kill",
    "L": "licenses", "M": "clusters", "m": "distribution", "N": "nodes", "n": "ntasks",
    "O": "overcommit", "o": "output", "p": "partition", "Q": "quiet", "q": "qos",
    "S": "core-spec", "s": "oversubscribe", "t": "time", "V": "version", "v": "verbose",
    "W": "wait", "w": "nodelist", "x": "exclude",
}  # fmt: skip

_NAME = re.compile(r"[a-z][a-z0-9-]*")
_VALUE = re.compile(r"[!-~]+")  # printable ASCII: no space, tab, newline, control or non-ASCII


def check_sbatch_option(name: str, value: str) -> None:
    """Refuse (``InvalidField`` at ``name``) an ``sbatch_options`` entry sshpyk does not pass
    on, saying which option and why."""
    if not value or not value.strip():
        raise InvalidField(name, "must not be empty")
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise InvalidField(name, "must not contain newlines, tabs or control characters")
    if not value.startswith("--"):
        short = SHORT.get(value[1:2]) if value.startswith("-") else None
        meant = f" ({value[:2]} is --{short})" if short else ""
        raise InvalidField(
            name, f"{value!r} is not a long option: write --name or --name=value{meant}"
        )
    if re.search(r"\s", value):
        raise InvalidField(
            name,
            f"{value!r} contains whitespace; write one option as --name=value "
            "(a space would split it into two words)",
        )
    opt, eq, arg = value[2:].partition("=")
    if not _NAME.fullmatch(opt):
        raise InvalidField(name, f"{value!r} is not an option of the form --name[=value]")
    if eq and not arg:
        raise InvalidField(name, f"--{opt}: give a value after '=', or leave the '=' out")
    if arg and not _VALUE.fullmatch(arg):
        raise InvalidField(
            name, f"--{opt}: the value must be printable ASCII (no accents, no other alphabets)"
        )
    if opt in FIELD_OPTIONS:
        raise InvalidField(
            name, f"--{opt} is a field of its own: use the field {FIELD_OPTIONS[opt]!r}"
        )
    if opt in REFUSED:
        raise InvalidField(name, f"--{opt} is not allowed: {REFUSED[opt]}")
    kind = ALLOWED.get(opt)
    if kind is None:
        raise InvalidField(
            name, f"--{opt} is not an sbatch option sshpyk passes on ({ALLOWLIST_HINT})"
        )
    if kind == "value" and not eq:
        raise InvalidField(name, f"--{opt} needs a value: write --{opt}=VALUE as one entry")
    if kind == "flag" and eq:
        raise InvalidField(name, f"--{opt} takes no value: write just --{opt}")
    if opt == "nodelist" and "/" in arg:
        raise InvalidField(name, "--nodelist: a '/' would make sbatch read the list from a file")


# ---- the fields: each check says in words what its schema pattern requires -----------------

_SLURM_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.+-]*"
_TIME = re.compile(
    r"[0-9]{1,7}|[0-9]{1,7}:[0-9]{1,2}|[0-9]{1,5}:[0-9]{1,2}:[0-9]{1,2}"
    r"|[0-9]{1,4}-[0-9]{1,2}(:[0-9]{1,2}(:[0-9]{1,2})?)?"
)


def _plain(name: str, value: str) -> None:
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise InvalidField(name, "must not contain newlines, tabs or control characters")
    if not value.strip():
        raise InvalidField(name, "must not be blank (leave it empty for the cluster's default)")
    if value.startswith("-"):
        raise InvalidField(name, f"{value!r} starts with '-' (sbatch would read it as an option)")


def check_slurm_name(name: str, value: str) -> None:
    """An account, a QOS: one Slurm name."""
    _plain(name, value)
    if not re.fullmatch(_SLURM_NAME, value):
        raise InvalidField(
            name, f"{value!r} is not a Slurm name (letters, digits and _ . + - only, no spaces)"
        )


def check_slurm_names(name: str, value: str) -> None:
    """A partition, or several separated by commas."""
    _plain(name, value)
    if not re.fullmatch(rf"{_SLURM_NAME}(,{_SLURM_NAME})*", value):
        raise InvalidField(
            name,
            f"{value!r} is not a partition name, or several separated by commas "
            "(letters, digits and _ . + - only, no spaces)",
        )


def check_slurm_time(name: str, value: str) -> None:
    _plain(name, value)
    if not _TIME.fullmatch(value):
        raise InvalidField(
            name,
            f"{value!r} is not a Slurm time: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS "
            "(e.g. 90, 8:00:00, 2-00)",
        )


def check_slurm_mem(name: str, value: str) -> None:
    _plain(name, value)
    if not re.fullmatch(r"[0-9]+[KMGTkmgt]?", value):
        raise InvalidField(
            name, f"{value!r} is not an amount of memory: a number with K, M, G or T, e.g. 4G"
        )


def check_slurm_gpus(name: str, value: str) -> None:
    _plain(name, value)
    if not re.fullmatch(r"([A-Za-z0-9_][A-Za-z0-9_.-]*:)?[1-9][0-9]{0,5}", value):
        raise InvalidField(
            name, f"{value!r} is not a GPU count: N or TYPE:N with N at least 1, e.g. 2 or a100:1"
        )


def check_slurm_constraint(name: str, value: str) -> None:
    _plain(name, value)
    bad = re.search(r"[^A-Za-z0-9_.:*&|,()\[\]-]", value)
    if bad:
        raise InvalidField(
            name,
            f"{value!r} contains {bad.group()!r}; node features are names joined by & | , "
            "with [ ] ( ) and *N (e.g. intel&gpu, [rack1|rack2])",
        )


CHECKS = {
    "sbatch_option": check_sbatch_option,
    "slurm_name": check_slurm_name,
    "slurm_names": check_slurm_names,
    "slurm_time": check_slurm_time,
    "slurm_mem": check_slurm_mem,
    "slurm_gpus": check_slurm_gpus,
    "slurm_constraint": check_slurm_constraint,
}


# the fields of the slurm object in the order their flags are given, and their sbatch option
FIELD_FLAGS = (
    ("partition", "partition"),
    ("time", "time"),
    ("cpus", "cpus-per-task"),
    ("mem", "mem"),
    ("gpus", "gpus"),
    ("account", "account"),
    ("qos", "qos"),
    ("constraint", "constraint"),
)


def sbatch_flags(slurm: dict[str, Any]) -> list[str]:
    """The sbatch argv words for a validated ``slurm`` object, each ONE word (the caller
    shell-quotes each for the remote shell): the fields that are set, then the options."""
    flags = [
        f"--{option}={slurm[field]}"
        for field, option in FIELD_FLAGS
        if slurm.get(field) is not None and slurm.get(field) != ""
    ]
    return flags + list(slurm.get("sbatch_options") or [])
