"""The launcher crosses the link once per host (protocol.LOADER, sessions.Kept): later
launches send its sha256 and their parameters, and a host that lost its copy gets the
program whole again without the launch failing."""

from __future__ import annotations

import pytest
from helpers import run_code, start

from sshpyk import sessions
from sshpyk.remote.protocol import PROGRAMS_DIR, program_sha256


@pytest.fixture
def sent(monkeypatch):
    """This test's own memory of what the hosts keep, and the form of each launch's stdin
    (True: by sha256) in order."""
    monkeypatch.setattr(sessions, "KEPT", sessions.Kept())
    return spied(monkeypatch)


def spied(monkeypatch) -> list[bool]:
    forms: list[bool] = []
    real = sessions.program_stdin

    def spy(name, params, kept=False, keep=False):
        if name == "launcher":
            forms.append(kept)
            assert keep is not kept  # whole ones are to be kept
        return real(name, params, kept=kept, keep=keep)

    monkeypatch.setattr(sessions, "program_stdin", spy)
    return forms


async def a_kernel_runs(managers, spec) -> None:
    km = managers(spec)
    kc = await start(km)
    out, reply = await run_code(kc, "print(6 * 7)")
    assert reply["status"] == "ok" and out.strip() == "42"
    kc.stop_channels()
    await km.shutdown_kernel()


async def test_the_launcher_goes_whole_once_then_by_its_sha256(test_hosts, specs, managers, sent):
    sha = program_sha256("launcher")
    test_hosts.ssh("remote", f"rm -f {PROGRAMS_DIR}/{sha}")
    spec = specs("ssh-kept")
    for expected in ([False], [False, True]):
        await a_kernel_runs(managers, spec)
        assert sent == expected
    # kept as the user's alone, under its sha256
    listing = test_hosts.ssh("remote", f"stat -c '%a %U' {PROGRAMS_DIR} {PROGRAMS_DIR}/{sha}")
    user = test_hosts.user
    assert listing.stdout.split("\n")[:2] == [f"700 {user}", f"600 {user}"], listing.stdout

    # the host loses it: the launch asks again, gets it whole and runs
    test_hosts.ssh("remote", f"rm -rf {PROGRAMS_DIR}")
    await a_kernel_runs(managers, spec)
    assert sent == [False, True, True, False]
    # and from then on this host gets it whole (a home that cannot keep it costs no round
    # trip per launch)
    await a_kernel_runs(managers, spec)
    assert sent == [False, True, True, False, False]


async def test_a_new_server_sends_the_launcher_the_host_kept_by_its_sha256(
    test_hosts, specs, managers, monkeypatch, tmp_path
):
    test_hosts.ssh("remote", f"rm -rf {PROGRAMS_DIR}")
    store = tmp_path / "kept-programs"
    monkeypatch.setattr(sessions, "KEPT", sessions.Kept(store=lambda: store))
    sent = spied(monkeypatch)
    spec = specs("ssh-kept-store")
    await a_kernel_runs(managers, spec)
    # a new Jupyter server: nothing in its memory, the store says what the host keeps
    monkeypatch.setattr(sessions, "KEPT", sessions.Kept(store=lambda: store))
    await a_kernel_runs(managers, spec)
    assert sent == [False, True]
