"""The commands on running kernels: ``ps`` (what this machine started that still runs) and
``reap`` (end a host's kernels that nothing uses any more, clear their leftovers)."""

from __future__ import annotations

import asyncio
import json
import sys

from .. import orphans, registry
from ..kernelspecs import list_entries
from ..model import check_alias, validate
from ..transport import Target
from .exitcodes import EXIT_OK, UsageError
from .render import plural, ps_table, with_progress


def cmd_ps(args) -> int:
    records, bad = registry.all_records()
    hosts = sorted({r.config.get("ssh_host_alias", "?") for r in records})
    found = (
        asyncio.run(
            with_progress(
                orphans.probe(records),
                f"asking {plural(len(hosts), 'host')}… ({', '.join(hosts[:4])})",
            )
        )
        if records
        else []
    )
    if args.json:
        print(json.dumps({"kernels": found, "unreadable": bad}, indent=1))
        return EXIT_OK
    if not found:
        print("no SSH kernel started from this machine is running")
    for line in ps_table(found):
        print(line)
    for name in bad:
        print(f"unreadable registry record: {name}", file=sys.stderr)
    return EXIT_OK


def _reap_prefix(args) -> tuple[str | None, str | None, str]:
    """ssh config, ssh and remote prefix for reaping ``host_alias``: given, or those of a
    kernel of that host this machine knows."""
    if args.remote_python_prefix:
        return args.ssh_config, args.ssh, args.remote_python_prefix
    records, _ = registry.all_records()
    known = [r.config for r in records] + [e.model for e in list_entries() if e.model]
    for config in known:
        if config.get("ssh_host_alias") == args.host_alias:
            return (
                args.ssh_config or config.get("ssh_config"),
                args.ssh or config.get("ssh"),
                config["remote_python_prefix"],
            )
    raise UsageError(
        f"no SSH kernel of host {args.host_alias!r} is known here: "
        "give --remote-python-prefix (a python on that host)"
    )


def cmd_reap(args) -> int:
    check_alias("host_alias", args.host_alias)
    for name in ("ssh_config", "remote_python_prefix"):
        if getattr(args, name):
            validate({name: getattr(args, name)}, only=(name,))
    config, ssh, prefix = _reap_prefix(args)
    if config:  # one a record or kernelspec names may have changed since it was written
        validate({"ssh_config": config}, only=("ssh_config",))
    target = Target.from_config(
        {"ssh_host_alias": args.host_alias, "ssh": ssh, "ssh_config": config}
    )
    result = asyncio.run(
        with_progress(
            orphans.reap(target, prefix, everything=args.all), f"reaping on {args.host_alias}…"
        )
    )
    for rundir in result["reaped"]:
        print(f"reaped {rundir}")
    for k in result["kernels"]:
        if k.get("where") == "elsewhere":
            print(f"left alone {k['rundir']}: on another host ({k.get('hostname')})")
    left = [k for k in result["kernels"] if k.get("alive")]
    print(
        f"{len(result['reaped'])} reaped on {args.host_alias}; {len(left)} kernel(s) still running"
    )
    return EXIT_OK
