"""The commands on kernelspecs: ``list``, ``add``, ``edit``, ``delete``, ``check``.

They raise on bad input (``UsageError``, ``InvalidField``, the store's refusals); ``main``
turns that into exit status 2 (see ``exitcodes``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from ..checks import CHECK_IDS, TITLES, Check, check_many
from ..kernelspecs import KernelEntry, delete, get_ssh_entry, list_entries, update, write
from ..model import OBJECT_FIELDS, InvalidField, parse_mount, schema
from ..states import CheckStatus
from . import sections
from .checking import check_per_host
from .exitcodes import EXIT_FAILED, EXIT_OK, UsageError
from .parser import ENV, MOUNTS, OPTIONS, PRELUDE
from .render import Progress, Style, check_line, entry_json, local_block, ssh_block


def cmd_list(args) -> int:
    entries = list_entries()
    want_local = args.local or not args.remote
    want_ssh = args.remote or not args.local
    local = [e for e in entries if not e.is_ssh] if want_local else []
    ssh = [e for e in entries if e.is_ssh] if want_ssh else []
    check = bool(ssh) and not args.no_check
    models = [e.model for e in ssh if e.model]
    if args.json:  # one document, at the end
        checks = asyncio.run(check_per_host(models, args.timeout)) if check else {}
        out = {
            "local": [entry_json(e, None) for e in local],
            "ssh": [entry_json(e, checks.get(e.name) if check else None) for e in ssh],
        }
        print(json.dumps(out, indent=1))
        return EXIT_OK
    style = Style(sys.stdout.isatty())
    printed = 0

    def block(text: str) -> None:
        # each kernel's block is written whole and flushed: blocks never interleave and a
        # pipe sees each one as soon as it is known
        nonlocal printed
        print(("\n" if printed else "") + text, flush=True)
        printed += 1

    for entry in local:  # known at once: never wait for a host to show them
        block(local_block(entry, style))
    for entry in ssh:
        if not check or entry.model is None:  # nothing to wait for
            block(ssh_block(entry, None, style))
    if check and models:
        by_name: dict[str, KernelEntry] = {e.name: e for e in ssh}
        asyncio.run(
            check_per_host(
                models,
                args.timeout,
                on_done=lambda name, checks: block(ssh_block(by_name[name], checks, style)),
            )
        )
    if not printed:
        print("no kernels")
    return EXIT_OK


def _given(args) -> dict[str, Any]:
    """The schema fields given as options (mounts aside: they are edited, not replaced; the
    optional sections too: ``sections``)."""
    given = {
        key: getattr(args, key)
        for key in OPTIONS.values()
        if key != MOUNTS and key not in OBJECT_FIELDS and getattr(args, key, None) is not None
    }
    if ENV in given:  # NAME=VALUE pairs, the last of a name wins
        given[ENV] = dict(given[ENV])
    return given


def kernel_name(args) -> str:
    """The kernel a command acts on: ``NAME`` or ``--kernel-name NAME`` (kept for
    compatibility), exactly one of them."""
    if args.name and args.kernel_name:
        raise UsageError(
            f"give the kernel name once: 'sshpyk {args.command} NAME' "
            "or '--kernel-name NAME', not both"
        )
    name = args.name or args.kernel_name
    if not name:
        raise UsageError(f"which kernel? give its name: sshpyk {args.command} NAME")
    return name


def _new_mounts(args) -> list[dict[str, Any]]:
    return [parse_mount(s) for s in args.mount_local_on_remote or []]


def cmd_add(args) -> int:
    data = {"interrupt_mode": "message", **_given(args)}
    data[MOUNTS] = _new_mounts(args)
    for section in OBJECT_FIELDS:
        value = sections.given(args, section)
        if value is not None:  # without --channels the model chooses relay for Slurm
            sections.require(section, value)
            data[section] = value
    entry = write(data, replace=args.replace)
    print(f"added SSH kernel {entry.name!r} in {entry.resource_dir}")
    return EXIT_OK


def cmd_edit(args) -> int:
    name = kernel_name(args)
    entry = get_ssh_entry(name)
    patch = _given(args)
    patch.pop("kernel_name", None)
    for key in args.clear or []:
        if key.partition(".")[0] in OBJECT_FIELDS and "." in key:
            continue  # one member of a section: ``sections.edit``
        if key not in schema()["properties"] or key == "kernel_name":
            raise InvalidField(key, "unknown field (see --help for what --clear accepts)")
        # None: back to its default (``kernelspecs.update``); a map or a list given with it
        # is what it becomes
        patch[key] = patch.get(key) if key in (ENV, PRELUDE) else None
    if args.env and ENV not in (args.clear or []):  # --env adds to what the kernel has
        patch[ENV] = {**((entry.model or {}).get(ENV) or {}), **patch[ENV]}
    for section in OBJECT_FIELDS:
        sections.edit(args, entry.model, entry.name, patch, section)
    if args.remove_mounts or args.remove_mount or args.mount_local_on_remote:
        mounts = [] if args.remove_mounts else list((entry.model or {}).get(MOUNTS) or [])
        for path in args.remove_mount or []:
            kept = [m for m in mounts if m["remote_path"] != path]
            if len(kept) == len(mounts):
                raise InvalidField("remove_mount", f"no mount at remote path {path!r}")
            mounts = kept
        patch[MOUNTS] = mounts + _new_mounts(args)
    if not patch:
        raise UsageError("nothing to change: give at least one option")
    entry = update(name, patch)
    print(f"updated SSH kernel {entry.name!r}")
    return EXIT_OK


def cmd_delete(args) -> int:
    name = kernel_name(args)
    delete(name)
    print(f"deleted SSH kernel {name!r}")
    return EXIT_OK


def cmd_check(args) -> int:
    entry = get_ssh_entry(kernel_name(args), valid=True)
    style = Style(sys.stdout.isatty())
    done: set[str] = set()
    alias = entry.model["ssh_host_alias"]

    def waiting() -> str | None:  # the check under way: the first one not reported yet
        todo = [cid for cid in CHECK_IDS if cid not in done]
        return f"checking {alias}: {TITLES[todo[0]]}…" if todo else None

    progress = Progress(waiting)

    def live(name, check: Check):
        done.add(check.id)
        progress.clear()
        if not args.json:
            print(check_line(check, style), flush=True)

    async def run():
        ticker = asyncio.ensure_future(progress.run())
        try:
            return await check_many([entry.model], on_result=live, timeout=args.timeout)
        finally:
            ticker.cancel()
            progress.clear()

    checks = asyncio.run(run())[entry.name]
    if args.json:
        print(json.dumps({"name": entry.name, "checks": [c.to_dict() for c in checks]}, indent=1))
    return EXIT_FAILED if any(c.status == CheckStatus.FAIL for c in checks) else EXIT_OK
