"""ssh's askpass bridged to the server (``sshpyk.login``): the real askpass program, run as
ssh runs it (its question as the argument, the socket in the environment), against a real
``Bridge`` on a unix socket in a private temporary directory.  No ssh, no network."""

from __future__ import annotations

import asyncio
import os
import stat
import sys

import pytest

from sshpyk.login.bridge import Bridge, install, shows_answer

HOST_KEY_QUESTION = (
    "The authenticity of host '10.200.2.2 (10.200.2.2)' can't be established.\n"
    "ED25519 key fingerprint is SHA256:Zm9vYmFyYmF6cXV4cXV1eHh5enp5eHh6enp6eHh6eno.\n"
    "This key is not known by any other names.\n"
    "Are you sure you want to continue connecting (yes/no/[fingerprint])? "
)


@pytest.fixture
def private(tmp_path):
    d = tmp_path / "ctl"
    d.mkdir(mode=0o700)
    return d


async def _ask(bridge: Bridge, text: str, hint: str = ""):
    """The askpass program as ssh starts it; returns the running process."""
    env = {**os.environ, **bridge.env, "SSH_ASKPASS_PROMPT": hint}
    return await asyncio.create_subprocess_exec(
        bridge.env["SSH_ASKPASS"], text, env=env, stdout=asyncio.subprocess.PIPE
    )


async def _until(check, timeout: float = 10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_install_writes_a_private_program_run_isolated(private):
    path = install(private)
    mode = path.stat().st_mode
    assert stat.S_IMODE(mode) == 0o700 and path.read_text().startswith(f"#!{sys.executable} -IS\n")
    assert install(private) == path  # the same text: left as it is


def test_a_question_is_shown_verbatim_and_the_answer_goes_to_ssh_only(private):
    async def run():
        changes = []
        bridge = Bridge(private, lambda: changes.append(bridge.prompt))
        await bridge.start()
        assert stat.S_IMODE(bridge.path.stat().st_mode) == 0o600
        text = "(sshpyktest@10.200.2.2) One-time password (OATH) for `sshpyktest': "
        proc = await _ask(bridge, text)
        await _until(lambda: bridge.prompt is not None)
        prompt = bridge.prompt
        assert prompt.text == text and prompt.echo is False
        assert not bridge.answer("not-this-prompt", "123456")
        assert bridge.answer(prompt.id, "123456")
        assert not bridge.answer(prompt.id, "654321")  # answered already
        out, _ = await proc.communicate()
        await _until(lambda: bridge.prompt is None)
        await bridge.close()
        return proc.returncode, out, changes

    rc, out, changes = asyncio.run(run())
    assert rc == 0 and out == b"123456\n"
    assert changes[0] is not None and changes[-1] is None  # asked, then no more


def test_cancel_makes_askpass_fail_so_ssh_gives_the_question_up(private):
    async def run():
        bridge = Bridge(private)
        await bridge.start()
        proc = await _ask(bridge, "Password: ")
        await _until(lambda: bridge.prompt is not None)
        bridge.cancel()
        out, _ = await proc.communicate()
        await bridge.close()
        return proc.returncode, out, bridge.path.exists()

    rc, out, left = asyncio.run(run())
    assert rc == 1 and out == b"" and not left


def test_a_question_ssh_withdraws_is_no_longer_shown(private):
    """ssh kills the askpass of a notice it no longer shows (or at its grace time)."""

    async def run():
        bridge = Bridge(private)
        await bridge.start()
        proc = await _ask(bridge, "Confirm user presence for key ED25519-SK", hint="none")
        await _until(lambda: bridge.prompt is not None)
        echo = bridge.prompt.echo
        proc.kill()
        await proc.wait()
        await _until(lambda: bridge.prompt is None)
        await bridge.close()
        return echo

    assert asyncio.run(run()) is True


def test_which_answers_may_show_as_typed():
    assert shows_answer(HOST_KEY_QUESTION, "")  # unmarked by ssh, told by its words
    assert shows_answer("Allow use of key?", "confirm")
    assert not shows_answer("Password: ", "")
    assert not shows_answer("Verification code: ", "")


def test_askpass_without_a_bridge_fails_without_hanging(private):
    path = install(private)

    async def run():
        env = {**os.environ, "SSHPYK_ASKPASS_SOCKET": str(private / "nothing.sock")}
        proc = await asyncio.create_subprocess_exec(
            str(path), "Password: ", env=env, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
        return proc.returncode, out

    assert asyncio.run(run()) == (1, b"")
