"""The login test hosts (netns mode only): ``otp`` wants the key AND a TOTP one-time code,
``password`` wants only the test user's password.

Both are extra sshds in the remote's namespace (same address, host key and ``$HOME``), each
on its own port with ``UsePAM yes``.  sshd names its PAM service after the basename of its
argv[0], so each one runs through a symlink to sshd named ``spk-<instance>-<kind>`` and
finds its own ``/etc/pam.d/spk-<instance>-<kind>``: pam_oath with a per-run secret (the
usersfile, root 0600, in the instance's ``login/`` dir), or pam_unix against the test
user's password.  The system's own sshd and ``/etc/pam.d/sshd`` are never touched.

The test user is shared by every instance up at once (a parallel run has its own
namespaces but the same ``/etc/shadow``), so its password is too: an instance reuses the
password a live one set and only the last one down resets it to ``*`` (no usable password,
but not locked: the key-only sshds run with ``UsePAM no``, which refuses a ``!`` account).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from .proc import HarnessError, run

# kind -> port on the remote's address (netns mode only)
PORTS = {"otp": 2223, "password": 2224}
PAM_DIR = Path("/etc/pam.d")
OTP_STEP = 30  # seconds per TOTP code
OTP_DIGITS = 6
# pam_oath accepts the codes of this many steps before and after the current one: small, yet
# otp_code() can hand out up to three codes within one step without waiting (each one is
# good once: pam_oath refuses a code at or before the last one used)
OTP_WINDOW = 2
# the test user's password and the shadow hash it was set as: serializes instances
_USER_LOCK = Path("/run/lock/sshpyk-test-user.lock")
# the first line of each PAM service file written here: names the instance's state dir
_PAM_MARK = r"# test host '\w+' of the sshpyk test harness \((/tmp/[^)]+)\): .*"

_SSHD_AUTH = {
    "otp": (
        "UsePAM yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication yes\n"
        "PubkeyAuthentication yes\n"
        "AuthenticationMethods publickey,keyboard-interactive\n"
    ),
    "password": (
        "UsePAM yes\n"
        "PasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication no\n"
        "AuthenticationMethods password\n"
        "PermitEmptyPasswords no\n"
    ),
}


def login_dir(state: Path) -> Path:
    """Secrets of one instance (root 0700): the OATH usersfile, the password, sshd links."""
    return state / "login"


def pam_service(state: Path, kind: str) -> str:
    # Linux-PAM lowercases service names
    return f"spk-{state.name}-{kind}".lower()


def sshd_link(state: Path, kind: str) -> Path:
    """The absolute argv[0] the kind's sshd runs as (sshd re-execs itself by it)."""
    return login_dir(state) / pam_service(state, kind)


def usersfile(state: Path) -> Path:
    return login_dir(state) / "users.oath"


def sshd_auth(kind: str) -> str:
    """The authentication lines of the kind's sshd_config."""
    return _SSHD_AUTH[kind]


# ---- set-up and teardown -----------------------------------------------------------------------


def prepare(state: Path, user: str, sshd: str) -> None:
    """Secrets, sshd links and PAM services of both kinds (before their sshds start)."""
    d = login_dir(state)
    d.mkdir(mode=0o700)
    # pam_oath rewrites the file (last code used) by a new file and rename in this dir
    fd = os.open(usersfile(state), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"HOTP/T{OTP_STEP}/{OTP_DIGITS} {user} - {secrets.token_hex(20)}\n")
    claim_password(state, user)
    pam = {
        "otp": (
            f"auth required pam_oath.so usersfile={usersfile(state)} "
            f"window={OTP_WINDOW} digits={OTP_DIGITS}"
        ),
        # nodelay: a wrong password fails at once (sshd has its own delay for failures)
        "password": "auth required pam_unix.so nodelay",
    }
    for kind, auth in pam.items():
        sshd_link(state, kind).symlink_to(sshd)
        (PAM_DIR / pam_service(state, kind)).write_text(
            f"# test host {kind!r} of the sshpyk test harness ({state}): removed by its teardown\n"
            f"{auth}\n"
            "account required pam_permit.so\n"
            "session required pam_permit.so\n"
            "password required pam_deny.so\n"
        )


def teardown(state: Path, user: str) -> None:
    """Remove the PAM services and links; the last instance down resets the password.
    The sshds themselves end with the remote's namespace (and by PID, in ``down``)."""
    for kind in PORTS:
        with contextlib.suppress(FileNotFoundError):
            (PAM_DIR / pam_service(state, kind)).unlink()
        with contextlib.suppress(FileNotFoundError):
            sshd_link(state, kind).unlink()
    release_password(state, user)


def sweep_orphans() -> list[Path]:
    """Remove the PAM services of instances whose state dir is gone (a reboot cleared
    /tmp, a crash before teardown): ``python -m harness down`` runs this.  A live
    instance always has its state dir: it records itself there before writing these."""
    removed = []
    for f in PAM_DIR.glob("spk-*"):
        first = f.read_text(errors="replace").partition("\n")[0]
        m = re.fullmatch(_PAM_MARK, first)
        if m and not (Path(m.group(1)) / "topology.json").exists():
            f.unlink()
            removed.append(f)
    return removed


def leftovers(state: Path) -> list[str]:
    return [
        f"pam {PAM_DIR / pam_service(state, k)}"
        for k in PORTS
        if (PAM_DIR / pam_service(state, k)).exists()
    ]


# ---- the test user's password (shared by every instance up at once) ---------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def shadow_hash(user: str) -> str | None:
    with contextlib.suppress(FileNotFoundError):
        for line in Path("/etc/shadow").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name == user:
                return rest.split(":", 1)[0]
    return None


def _others(state: Path) -> Iterator[Path]:
    """Login dirs of the other instances that set or share the password now."""
    for p in Path("/tmp").glob("*/login/password"):
        if p.parent.parent != state and (p.parent.parent / "topology.json").exists():
            yield p.parent


def claim_password(state: Path, user: str) -> str:
    d = login_dir(state)
    with _locked(_USER_LOCK):
        current = shadow_hash(user)
        pw = None
        for other in _others(state):
            with contextlib.suppress(OSError):
                if (other / "shadow").read_text() == current:
                    pw = (other / "password").read_text()
                    break
        if pw is None:
            pw = secrets.token_urlsafe(18)  # no ':' or newline: chpasswd takes "user:pw" lines
            run(["chpasswd"], input=f"{user}:{pw}\n")
            current = shadow_hash(user)
        for name, text in (("password", pw), ("shadow", current or "")):
            fd = os.open(d / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
    return pw


def release_password(state: Path, user: str) -> None:
    d = login_dir(state)
    if not (d / "password").exists():
        return  # this instance never set or shared it (loopback mode, a failed start)
    with _locked(_USER_LOCK):
        for name in ("password", "shadow"):
            with contextlib.suppress(FileNotFoundError):
                (d / name).unlink()
        current = shadow_hash(user)
        if current is None or current == "*":
            return
        for other in _others(state):
            with contextlib.suppress(OSError):
                if (other / "shadow").read_text() == current:
                    return  # a live instance still logs in with it
        run(["usermod", "-p", "*", user])


def read_password(state: Path) -> str:
    try:
        return (login_dir(state) / "password").read_text()
    except FileNotFoundError:
        raise HarnessError("no password host in this instance (netns mode only)") from None


# ---- one-time codes ------------------------------------------------------------------------------


def otp_secret(state: Path) -> str:
    """The hex OATH secret (``oathtool --totp SECRET``)."""
    return _usersfile_fields(state)[3]


def _usersfile_fields(state: Path) -> list[str]:
    try:
        return usersfile(state).read_text().split()
    except FileNotFoundError:
        raise HarnessError("no otp host in this instance (netns mode only)") from None


def _codes(secret: str, first_step: int, count: int) -> dict[int, str]:
    """TOTP codes of ``count`` steps from ``first_step`` on, by oathtool."""
    out = run(
        [
            "oathtool",
            "--totp",
            f"--time-step-size={OTP_STEP}s",
            f"--digits={OTP_DIGITS}",
            f"--now=@{first_step * OTP_STEP}",
            f"--window={count - 1}",
            secret,
        ]
    ).stdout.split()
    return {first_step + i: code for i, code in enumerate(out)}


def otp_code(state: Path, min_valid: float = 5.0) -> str:
    """A TOTP code the otp host accepts now and for ``min_valid`` seconds more: waits for the
    next step when needed.  pam_oath takes each code once and never one at or before the
    last one used, so every call hands out a later step than the last code used or handed
    out (by any process: the step is kept in the instance's login dir)."""
    d = login_dir(state)
    with _locked(d / "otp.lock"):
        while True:
            now = time.time()
            step = int(now // OTP_STEP)
            fields = _usersfile_fields(state)
            codes = _codes(fields[3], step - OTP_WINDOW, 2 * OTP_WINDOW + 1)
            last_used = fields[5] if len(fields) > 5 else None  # type/user/pin/secret/n/otp/time
            floor = max([s for s, c in codes.items() if c == last_used], default=-1)
            with contextlib.suppress(FileNotFoundError, ValueError):
                floor = max(floor, int((d / "otp_issued").read_text()))
            for s in range(step, step + OTP_WINDOW + 1):
                # good while the current step is at most s + OTP_WINDOW
                if s > floor and (s + OTP_WINDOW + 1) * OTP_STEP - now >= min_valid:
                    (d / "otp_issued").write_text(str(s))
                    return codes[s]
            time.sleep((step + 1) * OTP_STEP - now + 0.05)


def wrong_otp_code(state: Path) -> str:
    """A well-formed code the otp host refuses (none of the steps its window accepts)."""
    step = int(time.time() // OTP_STEP)
    near = set(_codes(otp_secret(state), step - OTP_WINDOW - 2, 2 * OTP_WINDOW + 5).values())
    n = int(next(iter(near)))
    while f"{n:0{OTP_DIGITS}d}" in near:
        n = (n + 1) % 10**OTP_DIGITS
    return f"{n:0{OTP_DIGITS}d}"


def missing_tools() -> list[str]:
    """What the login hosts need and this machine lacks (./dev setup installs both)."""
    missing = [] if shutil.which("oathtool") else ["oathtool (package oathtool)"]
    pam_dirs = ("/lib/*/security", "/usr/lib/*/security", "/lib/security", "/usr/lib/security")
    if not any(glob.glob(f"{d}/pam_oath.so") for d in pam_dirs):
        missing.append("pam_oath.so (package libpam-oath)")
    return missing
