"""The kernelspec's optional sections on the command line: ``slurm``, ``container`` — every
field of ``model.OBJECT_FIELDS`` (an object, or null for none), all handled alike.

The options come from the schema: ``--SECTION-MEMBER`` sets one member (``--slurm-cpus``,
``--container-image``), a list member is given one entry at a time as the repeatable
``--SECTION-option=--NAME[=VALUE]``, ``--SECTION`` turns the section on with what is given
(any ``--SECTION-*`` option implies it), ``--no-SECTION`` (the same as ``--clear SECTION``)
turns it off and ``--clear SECTION.MEMBER`` puts one member back to its default.  On edit
only the members given change.  The parser (``parser``) adds the options; ``specs`` builds
the kernelspec with ``given`` and ``edit``; the model then checks every value.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidFields
from ..model import OBJECT_FIELDS, InvalidField, schema
from .exitcodes import UsageError

SLURM, CONTAINER = "slurm", "container"


@dataclass(frozen=True)
class Words:
    """What the CLI says about a section (everything else comes from the schema)."""

    group: str  # the --help group's description
    on: str  # --SECTION's help
    off: str  # --no-SECTION's help
    thing: str  # "--no-SECTION turns THING off"
    setting: str  # "unknown SETTING"
    absent: str  # "'k' ABSENT: nothing to clear"


WORDS = {
    SLURM: Words(
        group="run the kernel on a compute node (any --slurm-* option implies --slurm)",
        on="run the kernel in a Slurm job, with the cluster's defaults for what is not given "
        "(channels then default to relay)",
        off="run the kernel on the SSH host again, not in a Slurm job (the same as --clear slurm)",
        thing="Slurm",
        setting="Slurm setting",
        absent="does not run under Slurm",
    ),
    CONTAINER: Words(
        group="run the kernel inside a container image on the host (any --container-* option "
        "implies --container; a container needs --container-runtime and --container-image)",
        on="run the kernel in a container (with --container-runtime and --container-image)",
        off="run the kernel on the host itself again, not in a container "
        "(the same as --clear container)",
        thing="the container",
        setting="container setting",
        absent="has no container",
    ),
}


def words(section: str) -> Words:
    """A section added to the schema has options at once, in the schema's own words."""
    if section in WORDS:
        return WORDS[section]
    rule = schema()["properties"][section]
    title = rule.get("title", section)
    return Words(
        group=rule.get("description", ""),
        on=f"set {title} (any --{section}-* option implies it)",
        off=f"remove {title} (the same as --clear {section})",
        thing=title,
        setting=f"{title} setting",
        absent=f"has no {title}",
    )


def kinds(rule: dict) -> set[str]:
    return set(rule["type"] if isinstance(rule["type"], list) else [rule["type"]])


def members(section: str) -> dict[str, dict]:
    return schema()["properties"][section]["properties"]


def member_option(section: str, member: str) -> str:
    """``--slurm-partition``, ``--container-image``...; the list member (sbatch options,
    runtime options) is ``--SECTION-option``, given once per entry."""
    if "array" in kinds(members(section)[member]):
        return f"--{section}-option"
    return f"--{section}-" + member.replace("_", "-")


def dest(section: str, member: str) -> str:
    """Where argparse keeps a member's option."""
    return f"{section}_{member}"


def _options(section: str) -> dict[str, str]:
    out = {member_option(section, m): m for m in members(section)}
    if len(out) != len(members(section)):  # two lists would share --SECTION-option
        raise TypeError(f"two members of {section!r} would have the same option: {out}")
    return out


# section -> {option -> member}
OPTIONS: dict[str, dict[str, str]] = {section: _options(section) for section in OBJECT_FIELDS}
# the repeatable ones, whose values start with '-' (written --slurm-option=--exclusive)
LIST_OPTIONS = tuple(
    opt
    for section, options in OPTIONS.items()
    for opt, member in options.items()
    if "array" in kinds(members(section)[member])
)


def given(args, section: str) -> dict[str, Any] | None:
    """The members given as ``--SECTION-*`` options; None when neither they nor
    ``--SECTION`` were given."""
    out = {
        member: getattr(args, dest(section, member))
        for member in OPTIONS[section].values()
        if getattr(args, dest(section, member), None) is not None
    }
    return out if out or getattr(args, section, None) else None


def require(section: str, value: dict[str, Any], why: str = "") -> None:
    """The members the schema requires, named with their options: the model would only say
    'is required' (and of the first one)."""
    rule = schema()["properties"][section]
    errors = []
    for member in rule.get("required", []):
        if value.get(member) in (None, ""):
            sub = members(section)[member]
            choices = f" ({', '.join(sub['enum'])})" if "enum" in sub else ""
            errors.append(
                InvalidField(
                    f"{section}.{member}",
                    f"is required{why}: give {member_option(section, member)}{choices}",
                )
            )
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InvalidFields(errors)


def cleared(section: str, clear: list[str]) -> list[str]:
    """The members of ``section`` named by ``--clear SECTION.MEMBER``."""
    out = []
    for key in clear:
        head, dot, member = key.partition(".")
        if head != section or not dot:
            continue
        if member not in OPTIONS[section].values():
            raise InvalidField(
                key,
                f"unknown {words(section).setting} (see --help for the --{section}-* ones)",
            )
        out.append(member)
    return out


def edit(args, model: dict[str, Any] | None, name: str, patch: dict[str, Any], section: str):
    """One section's part of an edit of kernel ``name`` (its ``model``): the members given
    change, the others stay (a list given replaces the kernel's); ``--clear SECTION`` with
    members starts from none.  Turning Slurm on also turns relay channels on, unless
    ``--channels`` says otherwise (the model then refuses 'forward' with its reason)."""
    new = given(args, section)
    clear = args.clear or []
    members_cleared = cleared(section, clear)
    if getattr(args, f"no_{section}", False):
        if new is not None or members_cleared:
            raise UsageError(
                f"--no-{section} turns {words(section).thing} off: "
                f"give it without --{section} options"
            )
        patch[section] = None
        return
    if new is None and not members_cleared:
        return  # untouched (or cleared whole by --clear SECTION)
    current = None if section in clear else (model or {}).get(section)
    if current is None and new is None:
        raise InvalidField(section, f"{name!r} {words(section).absent}: nothing to clear")
    value = {**(current or {}), **(new or {})}
    for member in members_cleared:  # back to its default (a list's is [], not null)
        value[member] = copy.deepcopy(members(section)[member].get("default"))
    turned_on = current is None and (model or {}).get(section) is None
    require(section, value, f" ({name!r} {words(section).absent} yet)" if turned_on else "")
    patch[section] = value
    if section == SLURM and current is None and "channels" not in patch:
        patch["channels"] = "relay"
