"""How the user's shell runs this environment's programs, for the hints the demo prints."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import sysconfig


def shell_command(name: str) -> str:
    """How the user's shell runs this environment's ``name`` (``sshpyk``, ``jupyter``), for
    the hints we print: the bare name when the shell finds this very program by it, else
    its path (``.venv/bin/sshpyk`` after ``./dev demo``, whose venv the user's shell has not
    activated).  A venv activated around us (``$VIRTUAL_ENV``) does not count: that PATH
    is the parent's (``./dev``), not the user's."""
    ours = _program(name)
    if ours is None:
        return name
    path = os.environ.get("PATH", "")
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        venv_bin = os.path.realpath(os.path.join(venv, "bin"))
        dirs = [d for d in path.split(os.pathsep) if d and os.path.realpath(d) != venv_bin]
        path = os.pathsep.join(dirs)
    found = shutil.which(name, path=path)
    if found and os.path.realpath(found) == os.path.realpath(ours):
        return name
    shown = os.path.abspath(ours)
    here = os.getcwd()
    if here != os.path.dirname(here) and shown.startswith(os.path.join(here, "")):
        # under the current directory (the project's .venv): short, like the README says
        relative = os.path.relpath(shown, here)
        shown = relative if os.sep in relative else os.path.join(os.curdir, relative)
    return shlex.quote(shown)


def _program(name: str) -> str | None:
    """This environment's ``name`` script: the one we were run as, if that is it."""
    if os.path.basename(sys.argv[0]) == name and os.path.isfile(sys.argv[0]):
        return sys.argv[0]
    script = os.path.join(sysconfig.get_path("scripts"), name)
    return script if os.access(script, os.X_OK) else None
