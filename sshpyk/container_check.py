"""The ``container`` health check of a kernel in a container (``checks.py`` runs it): after
the kernelspec's prelude, the runtime is on the host's PATH, and the image starts and its
python has ipykernel.  One command on the host; it runs the image once, as a launch would
(``remote/container.py`` builds both command lines)."""

from __future__ import annotations

import shlex
import uuid

from .remote.container import inner_argv, run_argv
from .remote.protocol import ERROR, MARK, message, prelude_script

PROBE = "import ipykernel, jupyter_client; print('IPYKERNEL', ipykernel.__version__)"


def command(container: dict, prelude: list[str] | tuple[str, ...] = ()) -> str:
    runtime = container["runtime"]
    name = f"sshpyk-check-{uuid.uuid4().hex[:12]}"
    inner = [*inner_argv(container, "python3", "", "/")[:1], "-c", PROBE]
    # the user is kept as a launch keeps it; docker's --user is the host's uid, known there
    argv = run_argv(container, name, inner, [], [], uid=1, gid=1)
    if argv[1] == "run":  # podman/docker: a check's container goes at once (no nanny here)
        argv.insert(2, "--rm")
    if "--user" in argv:
        i = argv.index("--user")
        argv[i + 1 : i + 2] = ["$(id -u):$(id -g)"]
    run = " ".join(a if a.startswith("$(") else shlex.quote(a) for a in argv)
    script = (
        f"{prelude_script(prelude)}"
        f"command -v {shlex.quote(runtime)} >/dev/null 2>&1 || {{ echo MISSING; exit 0; }}; "
        f"{run} 2>&1 | tail -c 1500"
    )
    if prelude:
        login = 'command -v bash >/dev/null 2>&1 && exec bash -l -c "$0"; exec sh -l -c "$0"'
        return f"exec /bin/sh -c {shlex.quote(login)} {shlex.quote(script)}"
    return f"exec /bin/sh -c {shlex.quote(script)}"


def verdict(out: str, container: dict, alias: str) -> tuple[bool, str, str]:
    """(ok, value, hint) from ``command``'s output."""
    runtime, image = container["runtime"], container["image"]
    for line in out.splitlines():
        if line.startswith(MARK) and (message(line) or {}).get(ERROR) == "prelude_failed":
            return False, runtime, "the kernelspec's prelude failed (see Remote Python)"
    if out.strip() == "MISSING":
        return False, runtime, f"{runtime} is not on {alias!r}'s PATH (after the prelude)"
    found = [line.split()[1] for line in out.splitlines() if line.startswith("IPYKERNEL ")]
    if found:
        return True, f"{runtime} {image}: ipykernel {found[0]}", ""
    said = out.strip().splitlines()[-1][:300] if out.strip() else "nothing"
    python = container.get("python") or "python3"
    return False, f"{runtime} {image}", f"the image did not run {python} with ipykernel: {said}"
