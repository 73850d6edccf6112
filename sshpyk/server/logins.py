"""/sshpyk/logins: interactive logins to hosts (``sshpyk.login``) for the Lab front end.

``GET`` lists them (with the question each waits on, verbatim); ``POST`` starts one for a
host (or returns the one in progress); an answer or a cancel is a ``POST`` to the login, so
XSRF-checked like every mutating request.  An answer goes to ssh's askpass only: it is never
logged (tornado logs no request body), stored or echoed back.
"""

from __future__ import annotations

import tornado
from jupyter_server.auth.decorator import authorized

from ..login.logins import Logins
from ..model import InvalidField
from ..transport import Target
from .base import NotFound, SSHPykHandler
from .hosts import body_fields

MAX_ANSWER = 4096  # characters: longer than any password or code ssh could want


class _LoginsHandler(SSHPykHandler):
    auth_resource = "kernels"

    @property
    def logins(self) -> Logins:
        runtime = self.runtime
        if runtime.logins is None:  # a runtime the extension did not set up (tests)
            runtime.logins = Logins(runtime.masters)
        return runtime.logins

    def _login(self, login_id: str):
        found = self.logins.get(login_id)
        if found is None:
            raise NotFound(f"no login {login_id!r}")
        return found


class LoginsHandler(_LoginsHandler):
    @tornado.web.authenticated
    @authorized
    def get(self):
        self.finish({"logins": [x.to_json() for x in self.logins.list()]})

    @tornado.web.authenticated
    @authorized
    def post(self):
        """``{"alias": A, "ssh_config"?: FILE}``: log in to A (the ssh client is the
        server's own, never the request's)."""
        data = self.json_body()
        if not isinstance(data, dict) or "alias" not in data:
            raise InvalidField("alias", "is required")
        args = _target_fields(data)
        target = Target.from_config({**args, "ssh": self.sshpyk_settings.ssh})
        self.set_status(202)
        self.finish(self.logins.start(target).to_json())


def _target_fields(data: dict) -> dict:
    """``alias`` (the model's ``ssh_host_alias``) and ``ssh_config``, validated by the model
    as a kernelspec's would be."""
    rest = {k: v for k, v in data.items() if k != "alias"}
    if "ssh_host_alias" in rest:
        raise InvalidField("ssh_host_alias", "unknown field: a login names its host `alias`")
    return body_fields({**rest, "ssh_host_alias": data["alias"]}, ("ssh_host_alias", "ssh_config"))


class LoginAnswerHandler(_LoginsHandler):
    @tornado.web.authenticated
    @authorized
    def post(self, login_id: str):
        """``{"prompt_id": P, "answer": TEXT}``: TEXT goes to ssh as the answer to P."""
        login = self._login(login_id)
        data = self.json_body()
        if not isinstance(data, dict):
            raise InvalidField("body", "must be a JSON object")
        prompt_id, answer = data.get("prompt_id"), data.get("answer")
        if not isinstance(prompt_id, str) or not prompt_id:
            raise InvalidField("prompt_id", "is required")
        if not isinstance(answer, str) or len(answer) > MAX_ANSWER or "\n" in answer:
            raise InvalidField("answer", f"must be one line of at most {MAX_ANSWER} characters")
        if not login.bridge.answer(prompt_id, answer):
            raise NotFound(f"login {login_id} does not ask {prompt_id!r} (any more)")
        self.set_status(204)
        self.finish()


class LoginCancelHandler(_LoginsHandler):
    @tornado.web.authenticated
    @authorized
    def post(self, login_id: str):
        self._login(login_id).cancel()
        self.set_status(204)
        self.finish()
