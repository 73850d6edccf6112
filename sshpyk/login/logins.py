"""A server's interactive logins: at most one per host at a time, so that every kernel,
mount or check that needs the host waits for the same one (three kernels launched at once
cause one prompt), and the front end lists them (``server/logins.py``).

A login makes the host's sshpyk master with ssh's questions going through a ``Bridge``; it
ends ``connected`` (the master is up: everything on the host uses it until it ends) or
``failed`` (``error`` says why: a wrong code ssh gave up on, cancel, a changed host key).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

from ..control_dir import control_dir
from ..errors import SSHConnectError, SSHPykError
from ..states import LoginState
from ..transport import Master, Target
from .bridge import Bridge

# how long a login started by the user (Lab's button, the REST API) may take: typing a
# password, then a code from a phone; sshd's own LoginGraceTime (120 s) usually ends it first
LOGIN_TIMEOUT = 300.0
KEEP = 20  # ended logins kept for the list (their outcome), the newest


class Login:
    """One interactive login to a host."""

    def __init__(self, target: Target):
        self.id = secrets.token_hex(8)
        self.target = target
        self.state = LoginState.CONNECTING
        self.error: str | None = None
        self.bridge = Bridge(control_dir(), self._changed)
        self.done = asyncio.Event()
        self.task: asyncio.Task | None = None

    @property
    def active(self) -> bool:
        return self.state in (LoginState.CONNECTING, LoginState.PROMPTING)

    def _changed(self) -> None:
        if self.active:
            prompting = self.bridge.prompt is not None
            self.state = LoginState.PROMPTING if prompting else LoginState.CONNECTING

    def to_json(self) -> dict[str, Any]:
        prompt = self.bridge.prompt if self.active else None
        return {
            "id": self.id,
            "alias": self.target.alias,
            "ssh_config": self.target.config,
            "state": self.state.value,
            "prompt": prompt.to_json() if prompt is not None else None,
            "error": self.error,
        }

    def cancel(self) -> None:
        """Give the login up: the question asked is refused and ssh is ended."""
        if self.task is not None and not self.task.done():
            self.bridge.cancel()
            self.task.cancel()


class Logins:
    """The logins of one server (its ``Runtime.logins``), over its masters ``pool``."""

    def __init__(self, pool: dict[str, Master]):
        self.pool = pool
        self._logins: list[Login] = []

    def list(self) -> list[Login]:
        return list(self._logins)

    def get(self, login_id: str) -> Login | None:
        return next((x for x in self._logins if x.id == login_id), None)

    def start(self, target: Target, timeout: float = LOGIN_TIMEOUT) -> Login:
        """A login to ``target``'s host: the one in progress, else a new one."""
        for login in self._logins:
            if login.active and login.target.key == target.key:
                return login
        login = Login(target)
        login.task = asyncio.get_running_loop().create_task(self._run(login, timeout))
        self._logins.append(login)
        ended = [x for x in self._logins if not x.active]
        for old in ended[: max(0, len(ended) - KEEP)]:
            self._logins.remove(old)
        return login

    async def _run(self, login: Login, timeout: float) -> None:
        master = Master.for_target(login.target, 0, self.pool)
        try:
            await login.bridge.start()
            await master.login(timeout, login.bridge.env)
            login.state = LoginState.CONNECTED
        except asyncio.CancelledError:
            login.state, login.error = LoginState.FAILED, "the login was cancelled"
        except SSHPykError as e:
            login.state, login.error = LoginState.FAILED, _why(e)
        except OSError as e:  # the bridge's socket could not be made
            login.state, login.error = LoginState.FAILED, f"the login could not start: {e}"
        finally:
            with contextlib.suppress(OSError):
                await login.bridge.close()
            login.done.set()

    async def wait(self, master: Master, timeout: float) -> None:
        """The ``LoginHook`` of a launch from Lab: a login to ``master``'s host (this one, or
        the one in progress), waited for at most ``timeout`` seconds."""
        login = self.start(master.target)
        try:
            await asyncio.wait_for(login.done.wait(), timeout)
        except asyncio.TimeoutError:
            raise SSHConnectError(
                f"logging in to {master.target.alias!r} took longer than {timeout:g}s: answer "
                "the questions in JupyterLab's dialog, or run "
                f"`sshpyk login {master.target.alias}` in a terminal, then start the kernel again",
                kind="login_needed",
            ) from None
        if login.state is not LoginState.CONNECTED:
            raise SSHConnectError(
                f"logging in to {master.target.alias!r} failed: {login.error}", kind="auth_failed"
            )


def _why(e: SSHPykError) -> str:
    """What went wrong, with ssh's own warning when a host key is at stake (the words of a
    changed key are what the user must read before anything else)."""
    detail = getattr(e, "detail", "") or ""
    if getattr(e, "kind", "") == "host_key" and "@@@" in detail:
        return f"{e}\n{detail}"
    return str(e)
