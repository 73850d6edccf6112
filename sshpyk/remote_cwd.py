"""Where a remote kernel starts: the notebook's own directory when it lies inside a local
directory mounted on the host (so ``open('data.csv')`` reads the file a local kernel would),
else the kernelspec's ``remote_cwd`` (default ``~``).

jupyter_server hands the provisioner the notebook's directory as ``cwd``; this module maps
it, as pure logic: the remote side then expands ``~`` and falls back to the home directory
when the path is not a directory there (``remote/launcher.py``)."""

from __future__ import annotations

import os
import posixpath
from typing import Any

DEFAULT = "~"


def cwd_params(
    local_cwd: str | None, mounts: list[dict[str, Any]], fallback: str | None
) -> dict[str, Any]:
    """What the launcher is told: ``cwd``, and where to go when it is no directory there
    (``cwd_else``: an optional mount that failed); a kernelspec's own ``remote_cwd`` that is
    missing on the host fails the launch (``cwd_strict``), ``~`` is the last resort."""
    cwd = remote_cwd(local_cwd, mounts, fallback)
    other = fallback or DEFAULT
    return {"cwd": cwd, "cwd_else": other if other != cwd else None, "cwd_strict": bool(fallback)}


def remote_cwd(local_cwd: str | None, mounts: list[dict[str, Any]], fallback: str | None) -> str:
    """The kernel's remote working directory for a notebook in ``local_cwd``."""
    if local_cwd:
        here = os.path.realpath(local_cwd)
        # the innermost mount wins (a mount inside another one is the more specific)
        best = None
        for m in mounts or []:
            root = os.path.realpath(os.path.expanduser(m["local_path"]))
            inside = here == root or here.startswith(root.rstrip(os.sep) + os.sep)
            if inside and (best is None or len(root) > len(best[0])):
                best = (root, m["remote_path"])
        if best is not None:
            rel = os.path.relpath(here, best[0])
            parts = [] if rel == "." else rel.split(os.sep)
            return posixpath.join(best[1], *parts)
    return fallback or DEFAULT
