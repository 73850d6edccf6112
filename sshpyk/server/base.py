"""What every sshpyk REST handler shares: JSON errors ``{message, field?}`` and safe bodies."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..errors import SSHPykError
from ..kernelspecs import KernelSpecError
from ..model import InvalidField

MAX_BODY = 64 * 1024  # a kernelspec is a few hundred bytes; anything near this is not one


class SSHPykHandler(APIHandler):
    def error(self, status: int, message: str, field: str | None = None) -> None:
        self.set_status(status)
        self.finish({"message": message, **({"field": field} if field else {})})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # tornado's own errors (404 route, 403 auth/XSRF, 405) in our JSON shape, no traceback
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))

    def json_body(self) -> Any:
        if len(self.request.body) > MAX_BODY:
            raise InvalidField("body", f"is larger than {MAX_BODY} bytes")
        try:
            return json.loads(self.request.body or b"null")
        except ValueError as e:
            raise InvalidField("body", f"is not valid JSON ({e})") from None

    def fail(self, e: Exception) -> None:
        """Answer a refused request; anything unexpected is left to tornado (500, logged)."""
        if isinstance(e, InvalidField):
            self.error(400, e.message if e.field == "body" else str(e), e.field)
        elif isinstance(e, KernelSpecError):
            self.error(e.status, str(e), e.field)
        elif isinstance(e, SSHPykError):
            self.error(502, str(e), None)
        else:
            raise web.HTTPError(500) from e
