"""``sshpyk discover ALIAS``: the Python environments of a host (conda, venvs, modules, the
system's), each with whether ipykernel and jupyter_client are there; ``--add PREFIX`` makes
one SSH kernelspec per chosen environment.

The connection is the host's master, as for ``sshpyk check``: BatchMode, so a host that
wants a password or a code fails at once, naming ``sshpyk login ALIAS``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..discovery import MODULE_PIP, discover, find, kernelspec_model, pip_hint
from ..errors import KernelSpecConflict, KernelSpecNotFound, Refused
from ..kernelspecs import get_entry, write
from ..model import validate
from ..transport import Master, Target
from .exitcodes import EXIT_OK, UsageError
from .login import _target as target_of  # the same ALIAS, --ssh-config, --ssh
from .render import with_progress

HEADER = ("KIND", "NAME", "PYTHON", "IPYKERNEL", "PREFIX")


async def _discover(target: Target, timeout: float) -> dict[str, Any]:
    master = Master.for_target(target)
    await master.ensure(min(timeout, 20))  # BatchMode: a login-wanting host fails, saying so
    return await discover(master, timeout)


def table(found: dict[str, Any], alias: str) -> list[str]:
    """The lines of the human answer: the table, then errors and hints."""
    rows = [HEADER]
    for env in found["environments"]:
        ipk = "yes" if env["ipykernel"] else "no"
        if env["error"] and not env["python"]:
            ipk = "?"
        where = env["prefix"] or "-"
        rows.append((env["kind"], env["name"], env["python"] or "-", ipk, where))
    lines = []
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
    else:
        lines = ["no Python environments found"]
    for env in found["environments"]:
        if env["error"]:
            lines.append(f"! {env['module'] or env['prefix']}: {env['error']}")
    for error in found["errors"]:
        lines.append(f"! {error}")
    lacking = [e for e in found["environments"] if e["python"] and not e["ipykernel"]]
    for env in lacking:
        how = pip_hint(env)
        if env["module"]:
            how = f"install ipykernel there: module load {env['module']} && {MODULE_PIP}"
        lines.append(f"hint: {env['name']} has no ipykernel; {how}")
    if any(e["ipykernel"] for e in found["environments"]):
        lines.append(
            f"add a kernel for one: sshpyk discover {alias} --add PREFIX [--add PREFIX...]"
        )
    return lines


def _models(args, found: dict[str, Any]) -> list[dict[str, Any]]:
    """One kernelspec model per ``--add``, all checked before any is written."""
    models = []
    for prefix in args.add:
        env = find(found["environments"], prefix, found.get("home"))
        if env is None:
            raise UsageError(
                f"{prefix} is not among the environments found on {args.host_alias} "
                "(run sshpyk discover without --add to see them)"
            )
        model = kernelspec_model(
            args.host_alias, env, ssh_config=args.ssh_config, name_prefix=args.name_prefix
        )
        models.append(validate(model))
    names = [m["kernel_name"] for m in models]
    for name in names:
        if names.count(name) > 1:
            raise Refused(
                f"two environments would both be kernel {name!r}: add them one at a time with "
                "different --name-prefix",
                field="kernel_name",
            )
        try:
            get_entry(name)
        except KernelSpecNotFound:
            continue
        raise KernelSpecConflict(f"a kernel named {name!r} already exists", field="kernel_name")
    return models


def cmd_discover(args) -> int:
    if args.name_prefix and not args.add:
        raise UsageError("--name-prefix names the kernels --add makes: give --add PREFIX too")
    target = target_of(args)
    found = asyncio.run(
        with_progress(_discover(target, args.timeout), f"discovering on {target.alias}…")
    )
    if args.add:
        for model in _models(args, found):  # nothing is written unless every one can be
            entry = write(model)
            print(f"added SSH kernel {entry.name!r} ({model['remote_python_prefix']})")
        return EXIT_OK
    if args.json:
        out = {"environments": found["environments"], "errors": found["errors"]}
        print(json.dumps(out, indent=1))
        return EXIT_OK
    print("\n".join(table(found, target.alias)))
    return EXIT_OK
