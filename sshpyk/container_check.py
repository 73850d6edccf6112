"""The ``container`` health check of a kernel in a container (``checks.py`` runs it): after
the kernelspec's prelude, the runtime is on the host's PATH, and the image starts and its
python has ipykernel.  One command on the host; it runs the image once, as a launch would
(``remote/container.py`` builds both command lines)."""

from __future__ import annotations

import shlex
import uuid

from .remote.container import image_python, run_argv
from .remote.protocol import ERROR, MARK, message, prelude_script, shell_command

PROBE = "import ipykernel, jupyter_client; print('IPYKERNEL', ipykernel.__version__)"
# the user is kept as a launch keeps it: the host's ids, known only there
HOST_UID, HOST_GID = "$(id -u)", "$(id -g)"


def command(container: dict, prelude: list[str] | tuple[str, ...] = ()) -> str:
    runtime = container["runtime"]
    name = f"sshpyk-check-{uuid.uuid4().hex[:12]}"
    inner = [image_python(container), "-c", PROBE]
    argv = run_argv(container, name, inner, [], [], uid=HOST_UID, gid=HOST_GID)
    if argv[1] == "run":  # podman/docker: a check's container goes at once (no nanny here)
        argv.insert(2, "--rm")
    # the ids expand on the host (double quotes); everything else is quoted as it is
    run = " ".join(f'"{a}"' if HOST_UID in a or HOST_GID in a else shlex.quote(a) for a in argv)
    script = (
        f"{prelude_script(prelude)}"
        f"command -v {shlex.quote(runtime)} >/dev/null 2>&1 || {{ echo MISSING; exit 0; }}; "
        f"{run} 2>&1 | tail -c 1500"
    )
    return shell_command(script, login=bool(prelude))


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
    return (
        False,
        f"{runtime} {image}",
        f"the image did not run {image_python(container)} with ipykernel: {said}",
    )
