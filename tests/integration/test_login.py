"""Interactive logins (issue #16) against the real login test hosts: ``otp`` (the key and a
TOTP code through PAM) and ``password``.  The CLI's login runs under a real pty; Lab's goes
through the REST routes of a real Jupyter server, which bridge ssh's askpass.  Netns only: the
login hosts need root (PAM)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import call, run_code, start, wait_state

from harness import Terminal
from sshpyk.errors import SSHConnectError
from sshpyk.login.logins import Logins
from sshpyk.states import TunnelState
from sshpyk.transport import Master, Target

BIN = Path(sys.executable).parent
OTP_PROMPT = b"One-time password"


@pytest.fixture
def logged_out(login_hosts):
    """No master to the login hosts before and after the test (they are the user's)."""

    async def end():
        for alias in ("otp", "password"):
            await Master.for_target(Target(alias, config=str(login_hosts.ssh_config))).exit()

    asyncio.run(end())
    yield
    asyncio.run(end())


def _terminal_login(th, alias: str, answers: list[str], timeout: float = 30) -> tuple[int, str]:
    """``sshpyk login ALIAS`` on a real terminal, each question answered in turn: the exit
    status and all it showed.  Blocking: a test with kernels runs it off the event loop
    (their reconnects must go on meanwhile, as in a server)."""
    argv = [str(BIN / "sshpyk"), "login", alias, "--ssh-config", str(th.ssh_config)]
    with Terminal(argv) as term:
        for answer in answers:
            term.expect(r": $", timeout=timeout)
            term.sendline(answer)
        rc = term.wait(timeout)
        return rc, term.output


def test_a_launch_without_a_login_fails_fast_naming_both_ways_in(
    login_hosts, logged_out, specs, managers, jp_asyncio_loop
):
    specs("ssh-otp", ssh_host_alias="otp")
    km = managers("ssh-otp")
    t0 = time.monotonic()
    with pytest.raises(SSHConnectError) as err:
        jp_asyncio_loop.run_until_complete(km.start_kernel())
    assert time.monotonic() - t0 < 10  # BatchMode: no prompt, no hang
    text = str(err.value)
    assert "sshpyk login otp" in text and "JupyterLab" in text


def test_cli_login_on_a_terminal_then_kernels_use_it_and_survive_a_relogin(
    login_hosts, logged_out, specs, managers, jp_asyncio_loop
):
    th = login_hosts
    rc, out = _terminal_login(th, "otp", [th.otp_code()])
    assert rc == 0, out
    assert "One-time password" in out and "logged in to otp" in out
    assert th.otp_secret not in out  # what was typed is not echoed back

    # three kernels at once: every one rides on that login, none asks anything
    specs("ssh-otp", ssh_host_alias="otp")
    kms = [managers("ssh-otp") for _ in range(3)]

    async def three():
        kcs = await asyncio.gather(*(start(km) for km in kms))
        outs = await asyncio.gather(*(run_code(kc, "print(6 * 7)") for kc in kcs))
        return kcs, outs

    kcs, outs = jp_asyncio_loop.run_until_complete(three())
    assert [o[0].strip() for o in outs] == ["42"] * 3

    # the login ends (logout): the kernels live on, reconnecting; a new login brings them back
    rc = subprocess.run(
        [str(BIN / "sshpyk"), "logout", "otp", "--ssh-config", str(th.ssh_config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert rc.returncode == 0 and "logged out of otp" in rc.stdout
    provs = [km.provisioner for km in kms]

    def login_again():
        """Log in on the terminal, off the event loop (the kernels' reconnects go on
        meanwhile, as in a server); every kernel is connected again after it."""
        code = th.otp_code()
        rc, out = jp_asyncio_loop.run_until_complete(
            asyncio.to_thread(_terminal_login, th, "otp", [code])
        )
        assert rc == 0, out
        for prov in provs:
            jp_asyncio_loop.run_until_complete(wait_state(prov, 60, TunnelState.CONNECTED))

    for prov in provs:  # no login can be made without the user: they wait for one
        jp_asyncio_loop.run_until_complete(wait_state(prov, 30, TunnelState.LOGIN_NEEDED))
        status = prov.status()
        assert (status["host_alias"], status["ssh_config"]) == ("otp", str(th.ssh_config))
    login_again()
    out, _ = jp_asyncio_loop.run_until_complete(run_code(kcs[0], "print('still here')"))
    assert out.strip() == "still here"

    # the master dies (kill -9: a laptop's sleep does no better): login needed, the kernels
    # live on; a third login brings them back
    master = Master.for_target(Target("otp", config=str(th.ssh_config)))
    assert jp_asyncio_loop.run_until_complete(master.is_alive())
    os.kill(master.identity[0], signal.SIGKILL)
    for prov in provs:
        jp_asyncio_loop.run_until_complete(wait_state(prov, 30, TunnelState.LOGIN_NEEDED))
    login_again()

    async def all_back():
        return await asyncio.gather(*(run_code(kc, "print('back')") for kc in kcs))

    outs = jp_asyncio_loop.run_until_complete(all_back())
    assert [o[0].strip() for o in outs] == ["back"] * 3
    for kc in kcs:
        kc.stop_channels()


def test_wrong_codes_on_the_terminal_are_refused(login_hosts, logged_out):
    th = login_hosts
    argv = [str(BIN / "sshpyk"), "login", "otp", "--ssh-config", str(th.ssh_config)]
    with Terminal(argv) as term:
        term.expect(r"One-time password.*: $")
        term.sendline(th.wrong_otp_code())
        term.expect(r"One-time password.*: $")  # ssh asks again, as it does in a terminal
        term.sendline(th.wrong_otp_code())
        with contextlib.suppress(AssertionError):  # a third chance, if ssh gives one
            term.expect(r"One-time password.*: $", timeout=5)
            term.sendline(th.wrong_otp_code())
        rc = term.wait(30)
    assert rc != 0 and "authentication to 'otp' failed" in term.output
    assert not asyncio.run(Master.for_target(Target("otp", config=str(th.ssh_config))).is_alive())


async def _prompted(jp_fetch, login_id: str, timeout: float = 20) -> dict:
    """The login once it waits on a question (or has ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logins = (await call(jp_fetch, "sshpyk", "logins"))["logins"]
        login = next(x for x in logins if x["id"] == login_id)
        if login["state"] != "connecting":
            return login
        await asyncio.sleep(0.1)
    raise AssertionError(f"login {login_id} asked nothing within {timeout}s")


async def _ended(jp_fetch, login_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logins = (await call(jp_fetch, "sshpyk", "logins"))["logins"]
        login = next(x for x in logins if x["id"] == login_id)
        if login["state"] in ("connected", "failed"):
            return login
        await asyncio.sleep(0.1)
    raise AssertionError(f"login {login_id} did not end within {timeout}s")


async def _answer(jp_fetch, login_id: str, prompt_id: str, text: str, expect: int = 204):
    body = {"prompt_id": prompt_id, "answer": text}
    path = ("sshpyk", "logins", login_id, "answer")
    await call(jp_fetch, *path, method="POST", body=body, expect=expect)


async def test_lab_login_shows_the_question_verbatim_and_passes_the_answer(
    login_hosts, logged_out, jp_fetch
):
    th = login_hosts
    body = {"alias": "password", "ssh_config": str(th.ssh_config)}
    login = await call(jp_fetch, "sshpyk", "logins", method="POST", body=body, expect=202)
    assert login["state"] in ("connecting", "prompting") and login["alias"] == "password"
    # one login per host: asking again gives the same one
    again = await call(jp_fetch, "sshpyk", "logins", method="POST", body=body, expect=202)
    assert again["id"] == login["id"]
    login = await _prompted(jp_fetch, login["id"])
    assert login["state"] == "prompting"
    prompt = login["prompt"]
    assert prompt["text"].endswith("password: ") and prompt["echo"] is False
    await _answer(jp_fetch, login["id"], prompt["id"], th.password)
    done = await _ended(jp_fetch, login["id"])
    assert done["state"] == "connected", done
    logins = (await call(jp_fetch, "sshpyk", "logins"))["logins"]
    assert th.password not in str(logins)  # never echoed back
    master = Master.for_target(Target("password", config=str(th.ssh_config)))
    assert await master.is_alive()
    # the answer is in no log, and in no process's argv or environment (ssh's master runs on)
    secret = th.password.encode()
    assert secret not in master.control_path.with_suffix(".log").read_bytes()
    for proc in Path("/proc").iterdir():
        for name in ("cmdline", "environ"):
            with contextlib.suppress(OSError):
                assert secret not in (proc / name).read_bytes(), (proc, name)


async def test_lab_login_cancelled_ends_its_ssh(login_hosts, logged_out, jp_fetch):
    th = login_hosts
    body = {"alias": "password", "ssh_config": str(th.ssh_config)}
    login = await call(jp_fetch, "sshpyk", "logins", method="POST", body=body, expect=202)
    login = await _prompted(jp_fetch, login["id"])
    # an answer to a question no longer asked is refused; bad input too
    await _answer(jp_fetch, login["id"], "0" * 16, "x", expect=404)
    await _answer(jp_fetch, login["id"], login["prompt"]["id"], "two\nlines", expect=400)
    await call(jp_fetch, "sshpyk", "logins", login["id"], "cancel", method="POST", expect=204)
    done = await _ended(jp_fetch, login["id"])
    assert done["state"] == "failed" and "cancelled" in done["error"]
    master = Master.for_target(Target("password", config=str(th.ssh_config)))
    assert not await master.is_alive()


async def test_kernels_launched_from_lab_at_once_ask_once(login_hosts, logged_out, specs, jp_fetch):
    """Three kernels started at once on the otp host from Lab: one login, one question."""
    th = login_hosts
    specs("ssh-otp", ssh_host_alias="otp", launch_timeout=60)

    async def launch():
        # a fresh code may take up to a step (30 s) to come: more than jp_fetch's default
        r = await jp_fetch(
            "api", "kernels", method="POST", body='{"name": "ssh-otp"}', request_timeout=120
        )
        assert r.code == 201
        return json.loads(r.body)

    launches = [asyncio.ensure_future(launch()) for _ in range(3)]
    asked = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not all(t.done() for t in launches):
        logins = (await call(jp_fetch, "sshpyk", "logins"))["logins"]
        for login in logins:
            prompt = login["prompt"]
            if prompt and prompt["id"] not in asked:
                asked.append(prompt["id"])
                code = await asyncio.to_thread(th.otp_code)
                await _answer(jp_fetch, login["id"], prompt["id"], code)
        await asyncio.sleep(0.1)
    kernels = await asyncio.gather(*launches)
    assert len(asked) == 1, asked
    assert len({k["id"] for k in kernels}) == 3
    logins = (await call(jp_fetch, "sshpyk", "logins"))["logins"]
    assert [x["state"] for x in logins] == ["connected"]
    for k in kernels:
        await call(jp_fetch, "api", "kernels", k["id"], method="DELETE", expect=204)


async def test_an_unknown_host_key_is_shown_and_written_only_when_accepted(
    login_hosts, tmp_path, jp_fetch
):
    """A config of the user's with no known key for the host: its fingerprint is shown in
    the login; refused, nothing is written; accepted, ssh writes it as it would; a key that
    changed afterwards is refused with ssh's warning, and nothing is asked."""
    th = login_hosts
    host = th.login_hosts["password"]
    known = tmp_path / "known_hosts"
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        f"Host password\n  HostName {host.address}\n  Port {host.port}\n  User {th.user}\n"
        f"  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking ask\n  BatchMode yes\n  ConnectTimeout 5\n  LogLevel ERROR\n"
    )
    cfg.chmod(0o600)
    body = {"alias": "password", "ssh_config": str(cfg)}
    master = Master.for_target(Target("password", config=str(cfg)))
    try:
        login = await call(jp_fetch, "sshpyk", "logins", method="POST", body=body, expect=202)
        login = await _prompted(jp_fetch, login["id"])
        question = login["prompt"]
        assert "continue connecting (yes/no" in question["text"] and question["echo"] is True
        assert "SHA256:" in question["text"]
        await _answer(jp_fetch, login["id"], login["prompt"]["id"], "no")
        assert (await _ended(jp_fetch, login["id"]))["state"] == "failed"
        assert not known.exists() or known.read_text() == ""

        login = await call(jp_fetch, "sshpyk", "logins", method="POST", body=body, expect=202)
        login = await _prompted(jp_fetch, login["id"])
        await _answer(jp_fetch, login["id"], login["prompt"]["id"], "yes")
        login = await _prompted(jp_fetch, login["id"])
        while login["state"] == "prompting" and "continue connecting" in login["prompt"]["text"]:
            await asyncio.sleep(0.05)  # the same question, until ssh moves on
            login = await _prompted(jp_fetch, login["id"])
        assert login["prompt"]["text"].endswith("password: ")
        await _answer(jp_fetch, login["id"], login["prompt"]["id"], th.password)
        assert (await _ended(jp_fetch, login["id"]))["state"] == "connected"
        assert f"[{host.address}]:{host.port}" in known.read_text()

        # the host's key changes: refused, with ssh's own warning; nothing is asked
        await master.exit()
        other = tmp_path / "other"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True
        )
        fake = " ".join(other.with_suffix(".pub").read_text().split()[:2])
        known.write_text(f"[{host.address}]:{host.port} {fake}\n")
        login = await call(jp_fetch, "sshpyk", "logins", method="POST", body=body, expect=202)
        login = await _ended(jp_fetch, login["id"])
        assert (
            login["state"] == "failed"
            and "REMOTE HOST IDENTIFICATION HAS CHANGED" in (login["error"])
        )
        assert known.read_text() == f"[{host.address}]:{host.port} {fake}\n"
    finally:
        await master.exit()


async def test_a_login_nobody_answers_ends_and_says_why(login_hosts, logged_out):
    """The user walks away from the question: at the login's time limit its ssh is ended,
    the question withdrawn, and the login says why; no master, no socket is left."""
    th = login_hosts
    logins = Logins({})
    login = logins.start(Target("password", config=str(th.ssh_config)), timeout=3)
    deadline = time.monotonic() + 10
    while login.bridge.prompt is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert login.to_json()["state"] == "prompting"
    await asyncio.wait_for(login.done.wait(), 15)
    state = login.to_json()
    assert state["state"] == "failed" and state["prompt"] is None
    assert "its questions went unanswered" in state["error"]
    assert not login.bridge.path.exists()
    assert not await Master.for_target(Target("password", config=str(th.ssh_config))).is_alive()
