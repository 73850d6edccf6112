"""The ``slurm`` health check of a Slurm kernel (``checks.py`` runs it): the login host has
Slurm's commands, a Slurm new enough for ``srun --overlap`` (20.11), and the kernelspec's
partition, when it names one, is there and up.  One command on the login host."""

from __future__ import annotations

import re

# one round trip: the version, then the partitions (name|availability), each line marked
COMMAND = (
    "exec /bin/sh -c 'for c in sbatch squeue srun scancel; do command -v $c >/dev/null || "
    'echo "MISSING $c"; done; sinfo --version 2>&1 | sed "s/^/VERSION /"; '
    'sinfo -h -o "%R|%a" 2>&1 | sed "s/^/PART /"\''
)
OVERLAP = (20, 11)  # srun --overlap: a step beside the batch step, never queued behind it


def command(slurm: dict, prelude=()) -> str:
    """The one command (the same for every Slurm kernel of a host)."""
    return COMMAND


def verdict(out: str, slurm: dict, alias: str) -> tuple[bool | None, str, str]:
    """(ok, value, hint) from ``COMMAND``'s output: None for a warning."""
    missing = [line.split()[1] for line in out.splitlines() if line.startswith("MISSING ")]
    if missing:
        return False, "", f"{', '.join(missing)} not found on {alias!r}: is it a Slurm login host?"
    version = next((ln[8:].strip() for ln in out.splitlines() if ln.startswith("VERSION ")), "")
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if not found:
        return False, version[:80], f"sinfo --version on {alias!r} said no version"
    value = f"slurm {found.group(0)}"
    if (int(found.group(1)), int(found.group(2))) < OVERLAP:
        return False, value, "sshpyk needs Slurm 20.11 or newer (srun --overlap)"
    parts = {}
    for line in out.splitlines():
        if line.startswith("PART ") and "|" in line:
            name, _, state = line[5:].partition("|")
            parts[name.strip()] = state.strip()
    wanted = [p for p in (slurm.get("partition") or "").split(",") if p]
    for p in wanted:
        if p not in parts:
            known = ", ".join(sorted(parts)) or "none"
            return False, value, f"partition {p!r} is not on this cluster (it has: {known})"
        if parts[p] != "up":
            return None, f"{value}, partition {p} {parts[p]}", "jobs wait until it is up"
    if wanted:
        value += f", partition {', '.join(wanted)} up"
    return True, value, ""
