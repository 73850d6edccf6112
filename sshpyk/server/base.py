"""What every sshpyk REST handler shares: the runtime, safe JSON bodies, and the ONE table
from the domain's errors to HTTP statuses.

Handlers do not catch errors to answer them: the domain raises (``sshpyk.errors``,
``model.InvalidField``, ``registry.Busy``), tornado hands the exception to ``write_error``,
and ``reply_to`` turns it into a status and the JSON body ``{message, field?, errors?}``
(``errors``: each invalid field of a refused input, ``{field, message}``).  Anything
not in the table is a bug: 500, logged with its traceback, and its text never sent.
"""

from __future__ import annotations

import json
from http.client import responses
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..errors import Conflict, KernelSpecNotFound, NotAnSSHKernel, Refused, SSHPykError
from ..model import InvalidField
from ..registry import Busy
from ..runtime import SETTINGS_KEY, Runtime, default_runtime
from .settings import SSHPykSettings, settings_of

MAX_BODY = 64 * 1024  # a kernelspec is a few hundred bytes; anything near this is not one


class NotFound(Refused):
    """The URL names nothing this server can act on (an orphaned kernel id that is not one)."""

    kind = "not_found"


# (exception class, status): the first class the exception is an instance of wins, so the
# narrower classes come first
STATUS: list[tuple[type[BaseException], int]] = [
    (InvalidField, 400),
    (KernelSpecNotFound, 404),
    (NotFound, 404),
    (NotAnSSHKernel, 422),
    (Conflict, 409),  # KernelSpecConflict included
    (Busy, 409),  # another process (a second server, the CLI) holds the kernel's record
    (Refused, 400),  # KernelSpecError and every other refusal of the input
    (SSHPykError, 502),  # the environment failed: ssh, the host, the remote python
]
# What a host answers for a run dir that is not provably this kernel's: another host's (a
# shared $HOME), or one whose processes cannot be verified.  Nothing was done: a conflict
# with what runs there, not a failure of the host.
CONFLICT_KINDS = frozenset({"elsewhere", "unverified"})


def status_of(exc: BaseException) -> int:
    """The HTTP status that answers ``exc`` (500: not an error sshpyk raises on purpose)."""
    if isinstance(exc, web.HTTPError):
        return exc.status_code
    if isinstance(exc, SSHPykError) and exc.kind in CONFLICT_KINDS:
        return 409
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 500)


def reply_to(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and JSON body ``{message, field?}`` that answer ``exc``."""
    status = status_of(exc)
    if isinstance(exc, web.HTTPError):  # tornado's own: 404 route, 403 auth/XSRF, 405
        return status, {"message": exc.log_message or exc.reason or responses.get(status, "")}
    if status == 500:  # a bug: its text may name anything, the log has it
        return status, {"message": responses[500]}
    if isinstance(exc, InvalidField):
        # a body that is not JSON is named by the message alone ("body: body is ..." reads ill)
        message, field = (exc.message if exc.field == "body" else str(exc)), exc.field
    else:
        message, field = str(exc), getattr(exc, "field", None)
    body = {"message": message, **({"field": field} if field else {})}
    if isinstance(exc, InvalidField):  # each invalid field, for a form to show by its field
        each = getattr(exc, "errors", None) or [exc]
        body["errors"] = [{"field": e.field, "message": e.message} for e in each]
    return status, body


class SSHPykHandler(APIHandler):
    @property
    def runtime(self) -> Runtime:
        """This server's live kernels, re-attach mailbox, mounts and masters (``app.py``)."""
        found = self.settings.get(SETTINGS_KEY)
        return found if isinstance(found, Runtime) else default_runtime()

    @property
    def sshpyk_settings(self) -> SSHPykSettings:
        return settings_of(self.settings)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if exc is None:
            status, body = status_code, {"message": self._reason}
        else:
            status, body = reply_to(exc)
            self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def log_exception(self, typ, value, tb) -> None:
        # a refusal or a host's failure is an answer, not a bug: the request log has its
        # status; only what falls through the table (500) is logged with its traceback
        answered = value is not None and not isinstance(value, web.HTTPError)
        if answered and status_of(value) != 500:
            return
        super().log_exception(typ, value, tb)

    def json_body(self) -> Any:
        if len(self.request.body) > MAX_BODY:
            raise InvalidField("body", f"is larger than {MAX_BODY} bytes")
        try:
            return json.loads(self.request.body or b"null")
        except ValueError as e:
            raise InvalidField("body", f"is not valid JSON ({e})") from None
