"""The Host aliases a user's ssh config offers, as ssh itself would resolve them.

Only the aliases are read from the files (``Host`` lines, following ``Include``); what each
one means — HostName, User, Port, ProxyJump — always comes from ``ssh -G``, so Match blocks,
defaults and every other rule of ssh's own parser apply.
"""

from __future__ import annotations

import glob
import os
import shlex
from pathlib import Path

from .errors import config_error_summary
from .localfiles import read_ssh_config
from .localproc import gather_bounded, run_local
from .model import InvalidField, check_alias

MAX_INCLUDE_DEPTH = 16
PATTERN_CHARS = set("*?!")


def default_config() -> Path:
    return Path("~/.ssh/config").expanduser()


def _include_paths(value: str, base: Path) -> list[Path]:
    out = []
    for word in shlex.split(value):
        word = os.path.expanduser(word)
        if not os.path.isabs(word):
            word = str(base / word)  # relative Includes are relative to ~/.ssh
        out += [Path(p) for p in sorted(glob.glob(word))]
    return out


def config_hosts(path: str | Path | None = None) -> list[str]:
    """Aliases of ``Host`` lines (wildcard patterns left out), in file order, no duplicates.

    The named file must pass ``localfiles``' checks (``InvalidField`` otherwise); an
    ``Include`` that does not is left out, as is one that does not exist."""
    path = str(path) if path else str(default_config())
    base = Path("~/.ssh").expanduser()
    seen: list[str] = []

    def read(p: str, depth: int) -> None:
        if depth > MAX_INCLUDE_DEPTH:
            return
        try:
            lines = read_ssh_config(p).splitlines()
        except InvalidField:
            if depth == 0 and os.path.exists(p):
                raise
            return
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.replace("=", " ", 1).partition(" ")
            key = key.lower()
            if key == "include":
                for inc in _include_paths(value, base):
                    read(str(inc), depth + 1)
            elif key == "host":
                try:
                    words = shlex.split(value)
                except ValueError:
                    continue
                for word in words:
                    if PATTERN_CHARS & set(word) or word in seen:
                        continue
                    try:
                        check_alias("ssh_host_alias", word)
                    except InvalidField:
                        continue  # nothing we could ever pass to ssh safely
                    seen.append(word)

    read(path, 0)
    return seen


def parse_ssh_g(text: str) -> dict[str, list[str]]:
    opts: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        opts.setdefault(key.lower(), []).append(value.strip())
    return opts


async def resolve(
    alias: str, ssh: str = "ssh", config: str | None = None, timeout: float = 10
) -> dict:
    """What ``ssh -G`` says about ``alias``: no network, only ssh's config logic."""
    argv = [ssh, *(["-F", config] if config else []), "-G", "--", alias]
    rc, out, err = await run_local(argv, timeout)
    if rc != 0:
        # never ssh's own words: they quote the config's lines (a key file, a secret)
        return {"alias": alias, "error": config_error_summary(err, rc)}
    opts = parse_ssh_g(out)
    jump = opts.get("proxyjump", ["none"])[0]
    return {
        "alias": alias,
        "hostname": opts.get("hostname", [alias])[0],
        "user": opts.get("user", [""])[0],
        "port": int(opts.get("port", ["22"])[0]),
        "proxyjump": None if jump == "none" else jump,
    }


async def resolve_many(
    aliases: list[str], ssh: str = "ssh", config: str | None = None
) -> list[dict]:
    """:func:`resolve` for every alias, a bounded number at a time, in order."""
    return await gather_bounded(lambda alias: resolve(alias, ssh, config), aliases)
