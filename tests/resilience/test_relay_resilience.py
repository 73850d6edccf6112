"""The relay channel path (``channels: relay``) across dead connections (issue #15).

Each test kills the host's ssh master by its pid while the link is cut (the remote side
never hears of it: the old connection is half-open, as after a laptop's sleep), then brings
the link back.  The journal must deliver what the kernel said meanwhile, and what a client
sent: every message once, in order; with a bounded journal, the newest output and one
marker for what was dropped; after a Jupyter server's kill -9, a re-attached client gets
the output made while no server ran.

The remote host's ``$HOME`` is a directory of this machine (a bind mount in its namespace),
so a cell and the test can hand each other flags through files there while the link is
down: what happened when is then known, not guessed from sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
import uuid
from pathlib import Path
from queue import Empty

import pytest
from helpers import kernel_client, kernel_procs, run_code, start, wait_state, wait_until

GAP = 10.0  # seconds the link stays down
REPLY = 120.0  # generous: these machines are noisy (a wait, never an assertion on speed)
MARKER = re.compile(r"^\[sshpyk: (\d+) messages? \(([^)]*)\) of output (?:was|were) dropped")


# ---- what a client receives ------------------------------------------------------------------
class Received:
    """Everything one channel of a client receives, read as it comes (in the background)."""

    def __init__(self, kc, channel: str):
        self.msgs: list[dict] = []
        self._get = getattr(kc, f"get_{channel}_msg")
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                self.msgs.append(await self._get(timeout=0.5))
            except Empty:
                continue

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    def of(self, msg_id: str) -> list[dict]:
        return [m for m in self.msgs if m["parent_header"].get("msg_id") == msg_id]

    def streams(self, msg_id: str, name: str = "stdout") -> list[str]:
        return [
            m["content"]["text"]
            for m in self.of(msg_id)
            if m["msg_type"] == "stream" and m["content"]["name"] == name
        ]

    def lines(self, msg_id: str) -> list[str]:
        return "".join(self.streams(msg_id)).splitlines()

    def idle(self, msg_id: str) -> bool:
        return any(
            m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
            for m in self.of(msg_id)
        )

    def reply(self, msg_id: str) -> dict | None:
        found = [m for m in self.of(msg_id) if m["msg_type"].endswith("_reply")]
        assert len(found) <= 1, f"{len(found)} replies to one request"
        return found[0] if found else None

    async def wait(self, pred, timeout: float, what: str) -> None:
        async def check():
            return pred()

        assert await wait_until(check, timeout, 0.05), f"waited {timeout:g} s for {what}"


# ---- the remote host's files, the tunnel's states, the dead connection ---------------------
def remote_home(th) -> Path:
    """The remote host's $HOME as this machine sees it (see the top of this module)."""
    return th.state / "hosts" / "remote" / "home"


async def wait_file(path: Path, timeout: float) -> None:
    async def there():
        return path.exists()

    assert await wait_until(there, timeout, 0.05), f"{path.name} never appeared"


def record_states(prov) -> list[str]:
    """Every tunnel state the kernel moves to from now on (the watchdog's own moves)."""
    wd = prov.kernel.watchdog
    seen: list[str] = []
    move = wd.move

    def recording(state, step=""):
        seen.append(str(state))
        move(state, step)

    wd.move = recording
    return seen


async def kill_connection(prov, faults) -> None:
    """The link goes (no FIN, no RST reaches the host), then the master dies (kill -9)."""
    assert await prov.master.is_alive()
    pid = prov.master.identity[0]
    assert pid > 0, prov.master.identity
    faults.cut("remote")
    os.kill(pid, signal.SIGKILL)


async def remote_pid(kc) -> int:
    out, reply = await run_code(kc, "import os; print(os.getpid())", timeout=60)
    assert reply["status"] == "ok", reply
    return int(out.strip())


def assert_survived(prov, states: list[str], pid_before: int, pid_after: int, launches: int):
    """Reconnecting, never dead and never restarted: the same kernel process."""
    assert "reconnecting" in states, states
    assert set(states) <= {"connected", "reconnecting"}, states
    assert states[-1] == "connected", states
    assert prov.state == "connected"
    assert pid_after == pid_before
    assert prov.launches == launches


@contextlib.asynccontextmanager
async def relay_kernel(th, specs, managers, faults, name: str, **config):
    """A relay kernel and a client; whatever happens, the link is restored and the kernel
    shut down after (and on success nothing of it is left on the host)."""
    km = managers(specs(name, channels="relay", **config))
    kc = None
    try:
        kc = await start(km)
        yield km, kc
    finally:
        faults.clear()
        if kc is not None:
            kc.stop_channels()
        if km.has_kernel:
            await km.shutdown_kernel(now=True)
    assert kernel_procs(th) == []


# ---- 1, 2: a cell printing through a dead connection -------------------------------------------
PRINTER = """\
import os, time
for i in range({n}):
    print(f"line {{i}}", flush=True)
    time.sleep(0.25)
open(os.path.expanduser("~/{tag}.done"), "w").close()
print("finished", flush=True)
"""


async def _print_through_a_dead_connection(th, specs, managers, faults, name, n, finish_in_gap):
    tag = uuid.uuid4().hex
    done = remote_home(th) / f"{tag}.done"
    async with relay_kernel(th, specs, managers, faults, name) as (km, kc):
        prov = km.provisioner
        pid = await remote_pid(kc)
        iopub, shell = Received(kc, "iopub"), Received(kc, "shell")
        try:
            states = record_states(prov)
            msg_id = kc.execute(PRINTER.format(n=n, tag=tag))
            await iopub.wait(lambda: len(iopub.lines(msg_id)) >= 4, 60, "the first lines")
            t_cut = time.monotonic()
            await kill_connection(prov, faults)
            await wait_state(prov, 30, "reconnecting")
            if finish_in_gap:
                await wait_file(done, 60)  # the cell has ended, the link is still down
            await asyncio.sleep(max(0.0, GAP - (time.monotonic() - t_cut)))
            # the precondition of each case, checked: the cell did, or did not, end in the gap
            assert done.exists() == finish_in_gap
            assert shell.reply(msg_id) is None and not iopub.idle(msg_id)
            assert len(iopub.lines(msg_id)) < n
            faults.restore("remote")

            await shell.wait(lambda: shell.reply(msg_id) is not None, REPLY, "execute_reply")
            assert shell.reply(msg_id)["content"]["status"] == "ok"
            await iopub.wait(lambda: iopub.idle(msg_id), REPLY, "the cell's idle status")
            # every line once, in order, and nothing else
            assert iopub.lines(msg_id) == [f"line {i}" for i in range(n)] + ["finished"]
            await wait_state(prov, 30, "connected")
        finally:
            await iopub.stop()
            await shell.stop()
        assert_survived(prov, states, pid, await remote_pid(kc), launches=1)


async def test_a_cell_printing_through_a_dead_connection_loses_no_line(
    netns_hosts, specs, managers, faults
):
    # 100 lines every 0.25 s: still printing long after the link is back
    await _print_through_a_dead_connection(
        netns_hosts, specs, managers, faults, "relay-dead-mid-cell", 100, finish_in_gap=False
    )


async def test_a_cell_ending_while_the_connection_is_dead_delivers_reply_and_idle(
    netns_hosts, specs, managers, faults
):
    await _print_through_a_dead_connection(
        netns_hosts, specs, managers, faults, "relay-dead-cell-ends", 16, finish_in_gap=True
    )


# ---- 3: input() across a reconnect ---------------------------------------------------------
@pytest.mark.parametrize("answered", ["while-down", "after-restore"])
async def test_input_answered_across_a_reconnect(netns_hosts, specs, managers, faults, answered):
    async with relay_kernel(netns_hosts, specs, managers, faults, f"relay-input-{answered}") as (
        km,
        kc,
    ):
        prov = km.provisioner
        pid = await remote_pid(kc)
        iopub, shell = Received(kc, "iopub"), Received(kc, "shell")
        try:
            states = record_states(prov)
            msg_id = kc.execute("x = input('answer? ')\nprint('got', x)", allow_stdin=True)
            req = await kc.get_stdin_msg(timeout=60)
            assert req["msg_type"] == "input_request"
            assert req["parent_header"]["msg_id"] == msg_id
            assert req["content"]["prompt"] == "answer? "
            t_cut = time.monotonic()
            await kill_connection(prov, faults)
            await wait_state(prov, 30, "reconnecting")
            if answered == "while-down":
                kc.input("across the gap")
            await asyncio.sleep(max(0.0, GAP - (time.monotonic() - t_cut)))
            assert shell.reply(msg_id) is None
            faults.restore("remote")
            if answered == "after-restore":
                kc.input("across the gap")
            await shell.wait(lambda: shell.reply(msg_id) is not None, REPLY, "execute_reply")
            assert shell.reply(msg_id)["content"]["status"] == "ok"
            await iopub.wait(lambda: iopub.idle(msg_id), REPLY, "the cell's idle status")
            assert iopub.lines(msg_id) == ["got across the gap"]
            await wait_state(prov, 30, "connected")
        finally:
            await iopub.stop()
            await shell.stop()
        out, reply = await run_code(kc, "print(x)", timeout=60)
        assert reply["status"] == "ok" and out.strip() == "across the gap"
        assert_survived(prov, states, pid, await remote_pid(kc), launches=1)


# ---- 4: a 1000-message burst across a reconnect -------------------------------------------
BURST = """\
import os, time
from IPython.display import display
flag = os.path.expanduser("~/{tag}")
for i in range(500):
    display({{"text/plain": f"m {{i}}"}}, raw=True)
open(flag + ".half", "w").close()
while not os.path.exists(flag + ".go"):
    time.sleep(0.02)
for i in range(500, 1000):
    display({{"text/plain": f"m {{i}}"}}, raw=True)
open(flag + ".done", "w").close()
"""


async def test_a_1000_message_burst_across_a_reconnect(netns_hosts, specs, managers, faults):
    tag = uuid.uuid4().hex
    home = remote_home(netns_hosts)
    async with relay_kernel(netns_hosts, specs, managers, faults, "relay-burst") as (km, kc):
        prov = km.provisioner
        pid = await remote_pid(kc)
        iopub, shell = Received(kc, "iopub"), Received(kc, "shell")
        try:
            states = record_states(prov)
            msg_id = kc.execute(BURST.format(tag=tag))
            # the first half sent (some of it still on its way), the link goes; the second
            # half is made while it is down
            await wait_file(home / f"{tag}.half", 60)
            t_cut = time.monotonic()
            await kill_connection(prov, faults)
            (home / f"{tag}.go").touch()
            await wait_file(home / f"{tag}.done", 60)
            await asyncio.sleep(max(0.0, GAP - (time.monotonic() - t_cut)))
            assert shell.reply(msg_id) is None
            faults.restore("remote")
            await shell.wait(lambda: shell.reply(msg_id) is not None, REPLY, "execute_reply")
            assert shell.reply(msg_id)["content"]["status"] == "ok"
            await iopub.wait(lambda: iopub.idle(msg_id), REPLY, "the cell's idle status")
            shown = [
                m["content"]["data"]["text/plain"]
                for m in iopub.of(msg_id)
                if m["msg_type"] == "display_data"
            ]
            assert shown == [f"m {i}" for i in range(1000)]  # each once, in order
            await wait_state(prov, 30, "connected")
        finally:
            await iopub.stop()
            await shell.stop()
        assert_survived(prov, states, pid, await remote_pid(kc), launches=1)


# ---- 5: the journal's bound -----------------------------------------------------------------
CHUNKS = 500  # of 10 kB each: 5 MB of output against a 1 MiB journal
FLOOD = """\
import os, time
flag = os.path.expanduser("~/{tag}")
while not os.path.exists(flag + ".go"):
    time.sleep(0.02)
for i in range({n}):
    print(f"chunk {{i:04d}} " + "x" * 10000, flush=True)
print("newest", flush=True)
open(flag + ".done", "w").close()
"""


async def test_the_journal_bound_drops_the_oldest_output_with_one_marker(
    netns_hosts, specs, managers, faults
):
    tag = uuid.uuid4().hex
    home = remote_home(netns_hosts)
    async with relay_kernel(
        netns_hosts, specs, managers, faults, "relay-bound", journal_limit_mb=1
    ) as (km, kc):
        prov = km.provisioner
        iopub, shell = Received(kc, "iopub"), Received(kc, "shell")
        try:
            msg_id = kc.execute(FLOOD.format(tag=tag, n=CHUNKS))
            await iopub.wait(
                lambda: any(m["msg_type"] == "execute_input" for m in iopub.of(msg_id)),
                60,
                "the cell to start",
            )
            await kill_connection(prov, faults)
            await wait_state(prov, 30, "reconnecting")
            (home / f"{tag}.go").touch()  # the output is made while the link is down
            await wait_file(home / f"{tag}.done", 120)
            assert shell.reply(msg_id) is None
            faults.restore("remote")
            await shell.wait(lambda: shell.reply(msg_id) is not None, REPLY, "execute_reply")
            assert shell.reply(msg_id)["content"]["status"] == "ok"
            await iopub.wait(lambda: iopub.idle(msg_id), REPLY, "the cell's idle status")
            markers = [t for t in iopub.streams(msg_id, "stderr") if t.startswith("[sshpyk: ")]
            assert len(markers) == 1, markers
            found = MARKER.match(markers[0])
            assert found, markers[0]
            dropped = int(found.group(1))
            # the bound dropped the oldest: what arrived is the newest, each once, in order,
            # and the marker counts exactly what did not arrive
            got = [
                int(line.split()[1]) for line in iopub.lines(msg_id) if line.startswith("chunk ")
            ]
            assert 0 < dropped < CHUNKS
            assert got == list(range(dropped, CHUNKS)), (dropped, got[:5], len(got))
            assert iopub.lines(msg_id)[-1] == "newest"
            await wait_state(prov, 30, "connected")
        finally:
            await iopub.stop()
            await shell.stop()


# ---- 6: re-attach after the Jupyter server's kill -9 -------------------------------------------
TICKER = """\
import os, time
for i in range({n}):
    print(f"line {{i}}", flush=True)
    with open(os.path.expanduser("~/{tag}.tmp"), "w") as f:
        f.write(str(i))
    os.replace(os.path.expanduser("~/{tag}.tmp"), os.path.expanduser("~/{tag}.progress"))
    time.sleep(0.25)
"""


async def test_reattach_after_server_kill9_replays_the_output_made_meanwhile(
    netns_hosts, specs, server_env
):
    runtime = Path(os.environ["JUPYTER_RUNTIME_DIR"])
    specs("relay-persist", channels="relay", lease_timeout=600)
    tag, n = uuid.uuid4().hex, 80
    progress = remote_home(netns_hosts) / f"{tag}.progress"
    s1 = server_env()
    await s1.ready()
    code, k = await s1.call("POST", "api/kernels", {"name": "relay-persist"})
    assert code == 201, k
    kid, s2, kc1, kc2 = k["id"], None, None, None
    try:
        kc1 = kernel_client(runtime, kid)
        await kc1.wait_for_ready(timeout=60)
        first = Received(kc1, "iopub")
        msg_id = kc1.execute(TICKER.format(n=n, tag=tag))
        await first.wait(lambda: len(first.lines(msg_id)) >= 4, 60, "the first lines")
        s1.kill9()
        await first.stop()
        kc1.stop_channels()
        before = first.lines(msg_id)
        seen = int(before[-1].split()[1])
        assert before == [f"line {i}" for i in range(seen + 1)]
        # the cell prints on while no server runs (its progress says so)

        async def printed_meanwhile():
            with contextlib.suppress(OSError, ValueError):
                return int(progress.read_text()) >= seen + 12
            return False

        assert await wait_until(printed_meanwhile, 60, 0.1)

        s2 = server_env()
        await s2.ready()
        code, model = await s2.call("POST", f"sshpyk/orphans/{kid}/attach", {})
        assert code == 201, model
        kc2 = kernel_client(runtime, kid)
        second = Received(kc2, "iopub")  # from its first message: no wait_for_ready drain
        try:
            await second.wait(lambda: second.idle(msg_id), REPLY, "the cell's idle status")
            after = second.lines(msg_id)
        finally:
            await second.stop()
        # what the first server's client did not get, the second one gets: nothing lost,
        # each line once, in order (lines the first server had taken but not acknowledged
        # may come again after its death; never a gap)
        assert after, "nothing was replayed"
        start_at = int(after[0].split()[1])
        assert start_at <= seen + 1, (seen, after[:3])
        assert after == [f"line {i}" for i in range(start_at, n)], after
        out, reply = await run_code(kc2, "print(i)", timeout=60)
        assert reply["status"] == "ok" and out.strip() == str(n - 1)
    finally:
        for kc in (kc1, kc2):
            if kc is not None:
                kc.stop_channels()
        deleted = None
        if s2 is not None and s2.proc.poll() is None:
            # (on a failure before the attach, server_env's cleanup ends the kernel)
            with contextlib.suppress(Exception):
                deleted, _ = await s2.call("DELETE", f"api/kernels/{kid}")
    assert deleted == 204
    assert kernel_procs(netns_hosts) == []
