"""The login test hosts are real and behave like an HPC login node: plain OpenSSH on a real
terminal, no sshpyk code.  ``otp`` wants the key AND a TOTP code (keyboard-interactive
through PAM's pam_oath), ``password`` only the test user's password (pam_unix).  Both exist
in netns mode only (PAM needs root); ``login_hosts`` skips elsewhere, and fails under
``SSHPYK_NO_SKIP=1``."""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
from pathlib import Path

from harness import Terminal, down, up
from harness import logins as login_setup
from harness.topology import pid_alive, run

OTP_PROMPT = r"\(sshpyktest@{addr}\) One-time password \(OATH\) for `sshpyktest': "
PASSWORD_PROMPT = r"sshpyktest@{addr}'s password: "
KINDS = ("otp", "password")


def _ssh(th, alias: str, *options: str) -> Terminal:
    """An interactive ssh to ``alias`` on a pty: the config says BatchMode yes, the command
    line's BatchMode=no wins (as for sshpyk's logins)."""
    argv = ["ssh", "-F", str(th.ssh_config), "-o", "BatchMode=no", *options]
    return Terminal([*argv, "--", alias, 'echo "on $SPK_HOST"'])


def _prompt(th, kind: str) -> str:
    return (OTP_PROMPT if kind == "otp" else PASSWORD_PROMPT).format(
        addr=re.escape(th["remote"].address)
    )


def test_otp_takes_the_key_and_a_one_time_code(login_hosts):
    th = login_hosts
    assert "BatchMode yes" in th.ssh_config.read_text()
    with _ssh(th, "otp") as t:
        t.expect(_prompt(th, "otp"))
        t.sendline(th.otp_code())
        assert t.wait() == 0, t.output
        t.expect(r"on remote\r\n")


def test_otp_asks_again_after_a_wrong_code_and_takes_a_used_code_only_once(login_hosts):
    th = login_hosts
    with _ssh(th, "otp") as t:
        t.expect(_prompt(th, "otp"))
        t.sendline(th.wrong_otp_code())
        t.expect(_prompt(th, "otp"))  # refused: asked again (ssh's retries)
        code = th.otp_code()
        t.sendline(code)
        assert t.wait() == 0, t.output
        t.expect("on remote")
    # pam_oath records the last code used: the same code again is a replay
    with _ssh(th, "otp", "-o", "NumberOfPasswordPrompts=1") as t:
        t.expect(_prompt(th, "otp"))
        t.sendline(code)
        assert t.wait() == 255, t.output
        t.expect(r"Permission denied \(keyboard-interactive\)")
        assert "on remote" not in t.output


def test_otp_refuses_wrong_codes_and_the_code_without_the_key(login_hosts):
    th = login_hosts
    with _ssh(th, "otp", "-o", "NumberOfPasswordPrompts=1") as t:
        t.expect(_prompt(th, "otp"))
        t.sendline(th.wrong_otp_code())
        assert t.wait() == 255, t.output
        t.expect(r"Permission denied \(keyboard-interactive\)")
    # without the key ssh is never asked for a code: publickey comes first
    with _ssh(th, "otp", "-o", "PubkeyAuthentication=no") as t:
        assert t.wait() == 255, t.output
        t.expect(r"Permission denied \(publickey\)")
        assert "One-time password" not in t.output


def test_password_host_takes_the_password_and_refuses_a_wrong_one(login_hosts):
    th = login_hosts
    with _ssh(th, "password") as t:
        t.expect(_prompt(th, "password"))
        t.sendline(th.password + "x")
        t.expect(_prompt(th, "password"))  # refused: asked again
        t.sendline(th.password)
        assert t.wait() == 0, t.output
        t.expect(r"on remote\r\n")
    assert th.password not in t.output  # ssh turned echo off
    with _ssh(th, "password", "-o", "NumberOfPasswordPrompts=1") as t:
        t.expect(_prompt(th, "password"))
        t.sendline("not-" + th.password)
        assert t.wait() == 255, t.output
        t.expect(r"Permission denied \(password\)")


def test_batch_mode_fails_fast_without_asking(login_hosts):
    """What the config says for every host: a plain ssh never waits for a person."""
    th = login_hosts
    for alias, method in (("otp", "keyboard-interactive"), ("password", "password")):
        t0 = time.monotonic()
        with Terminal(["ssh", "-F", str(th.ssh_config), "--", alias, "true"]) as t:
            assert t.wait(timeout=10) == 255, t.output
            assert time.monotonic() - t0 < 5, t.output
            t.expect(rf"Permission denied \({method}\)")
            assert not re.search(_prompt(th, alias), t.output), t.output


def test_the_secrets_are_root_only_files(login_hosts):
    th = login_hosts
    d = login_setup.login_dir(th.state)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700 and d.stat().st_uid == 0
    for f in (login_setup.usersfile(th.state), d / "password"):
        st = f.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, 0), f
    assert th.otp_secret in login_setup.usersfile(th.state).read_text()
    config = th.ssh_config.read_text()
    assert th.password not in config and th.otp_secret not in config
    # the system's own sshd is left alone; each login sshd has its own PAM service
    for kind in KINDS:
        service = Path("/etc/pam.d") / login_setup.pam_service(th.state, kind)
        assert service.exists() and str(th.state) in service.read_text()
        assert os.readlink(login_setup.sshd_link(th.state, kind)) == "/usr/sbin/sshd"
    assert "spk" not in Path("/etc/pam.d/sshd").read_text()


def test_a_second_instance_shares_the_password_and_leaves_nothing(login_hosts):
    """The test user is one for every instance up at once: a second one reuses the
    password, and its teardown keeps it for the first (only the last one down resets it)."""
    th = login_hosts
    # an index (hence subnet) of its own beside the session's instance
    th2 = up("netns", prefix="spklg", index=32 + th.index % 32)
    try:
        assert th2.has_login_hosts and th2.password == th.password
        assert th2.otp_secret != th.otp_secret
        services = [Path("/etc/pam.d") / login_setup.pam_service(th2.state, k) for k in KINDS]
        assert all(s.exists() for s in services)
        sshds = [h.sshd_pid for h in th2.login_hosts.values()]
    finally:
        left = down(th2.state)
    assert left == []
    assert not any(s.exists() for s in services)
    assert sshds and not any(pid_alive(p) for p in sshds)
    # the first instance's password host still takes the password
    with _ssh(th, "password") as t:
        t.expect(_prompt(th, "password"))
        t.sendline(th.password)
        assert t.wait() == 0, t.output


def test_the_password_is_shared_and_the_last_instance_down_resets_it(login_hosts):
    """What a parallel run relies on, on a throwaway user (the real one is in use)."""
    tag = f"spkpw{os.getpid() % 100000}"
    run(["useradd", "-M", "-s", "/usr/sbin/nologin", tag])
    states = [Path(f"/tmp/{tag}{c}") for c in "ab"]
    try:
        for st in states:
            login_setup.login_dir(st).mkdir(mode=0o700, parents=True)
            (st / "topology.json").write_text("{}")  # what marks a live instance
        first = login_setup.claim_password(states[0], tag)
        hashed = login_setup.shadow_hash(tag)
        assert hashed.startswith("$") and first not in hashed
        assert login_setup.claim_password(states[1], tag) == first
        assert login_setup.shadow_hash(tag) == hashed  # set once, not again
        login_setup.release_password(states[0], tag)
        assert login_setup.shadow_hash(tag) == hashed  # the other one still logs in with it
        login_setup.release_password(states[1], tag)
        assert login_setup.shadow_hash(tag) == "*"  # no password, yet not locked ("!")
    finally:
        run(["userdel", tag], check=False)
        for st in states:
            shutil.rmtree(st, ignore_errors=True)


def test_harness_down_sweeps_the_pam_services_of_instances_gone(login_hosts):
    """A reboot clears /tmp but not /etc/pam.d: ``python -m harness down`` removes what an
    instance without a state dir left, and never a live instance's."""
    gone = Path(f"/tmp/spkgone{os.getpid()}")
    assert not gone.exists()
    orphan = Path("/etc/pam.d") / login_setup.pam_service(gone, "otp")
    orphan.write_text(
        f"# test host 'otp' of the sshpyk test harness ({gone}): removed by its teardown\n"
        "auth required pam_deny.so\n"
    )
    try:
        assert orphan in login_setup.sweep_orphans()
        assert not orphan.exists()
        for kind in KINDS:
            assert (Path("/etc/pam.d") / login_setup.pam_service(login_hosts.state, kind)).exists()
    finally:
        orphan.unlink(missing_ok=True)
