"""Checking many SSH kernels at once for ``sshpyk list``: each host within its own time, a
host that does not answer costing only its own kernels."""

from __future__ import annotations

import asyncio

from ..checks import CHECK_IDS, TITLES, Check, Checker
from ..states import CheckStatus
from .render import Progress, plural

LATE = 0.5  # s after a kernel is given up on that its work ends


def unanswered(model: dict, got: list[Check], timeout: float, error: str = "") -> list[Check]:
    """The checks of a kernel whose host did not answer in time: what was known stays, the
    first missing check fails saying so, the rest are skipped."""
    have = {c.id for c in got}
    todo = [
        cid
        for cid in CHECK_IDS
        if cid not in have and (cid != "sshfs" or model.get("mount_local_on_remote"))
    ]
    alias = model["ssh_host_alias"]
    why = error or f"no answer from {alias} within {timeout:g} s"
    out = list(got)
    for i, cid in enumerate(todo):
        if i == 0:
            value = "no answer" if not error else ""
            out.append(Check(cid, TITLES[cid], CheckStatus.FAIL, value, why))
        else:
            out.append(Check(cid, TITLES[cid], CheckStatus.SKIPPED, hint=why))
    return out


async def check_per_host(models: list[dict], timeout: float, on_done=None):
    """Check every kernel at once, each within ``timeout`` seconds of the start: a host that
    does not answer costs its own kernels that time, never the others'.  ``on_done(name,
    checks)`` as soon as a kernel is known, in the order they finish; meanwhile, on a
    terminal, which hosts are still being waited for."""
    loop = asyncio.get_running_loop()
    # every piece of work ends by its own timeout a little after a kernel is given up on,
    # so what is given up on is killed and reaped, never left running after the CLI
    checker = Checker(timeout, deadline=loop.time() + timeout + LATE)
    given_up: list[asyncio.Task] = []
    results: dict[str, list[Check]] = {}
    waiting = {m["kernel_name"]: m["ssh_host_alias"] for m in models}

    def status() -> str | None:
        hosts = sorted(set(waiting.values()))
        if not hosts:
            return None
        more = ", …" if len(hosts) > 4 else ""
        return f"checking {plural(len(hosts), 'host')}… ({', '.join(hosts[:4])}{more})"

    progress = Progress(status)
    ticker = asyncio.ensure_future(progress.run())

    async def one(model: dict) -> None:
        got: list[Check] = []
        task = asyncio.ensure_future(checker.check(model, got.append))
        await asyncio.wait({task}, timeout=timeout)
        if not task.done():
            given_up.append(task)
            checks = unanswered(model, got, timeout)
        elif task.exception() is not None:
            checks = unanswered(model, got, timeout, f"the check broke: {task.exception()}")
        else:
            checks = task.result()
        name = model["kernel_name"]
        results[name] = checks
        waiting.pop(name, None)
        if on_done:
            progress.clear()
            on_done(name, checks)

    try:
        await asyncio.gather(*(one(m) for m in models))
        if given_up:  # every row is out; let their work end by its own (reaping) timeouts
            await asyncio.wait(given_up, timeout=LATE + 5)
            for task in given_up:  # their outcome no longer matters: never log it
                if task.done():
                    task.exception()
                else:
                    task.cancel()
    finally:
        ticker.cancel()
        progress.clear()
    return results
