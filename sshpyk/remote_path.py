"""Paths on the remote host, as its shell reads them."""

from __future__ import annotations

import shlex


def remote_path_expr(path: str) -> str:
    """Shell expression for a remote path: quoted, with a leading ``~/`` meaning $HOME."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)
