"""The one table from the domain's errors to HTTP statuses (``sshpyk/server/base.py``), and
a handler that raises answering through it, without a server: tornado runs the handler
against a fake connection that records what would be sent."""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import pytest
from tornado import httputil, web
from tornado.concurrent import Future

import sshpyk.server
from sshpyk import kernelspecs
from sshpyk.errors import (
    Conflict,
    InvalidFields,
    KernelSpecConflict,
    KernelSpecError,
    KernelSpecNotFound,
    NotAnSSHKernel,
    Refused,
    SSHConnectError,
    SSHPykError,
)
from sshpyk.model import InvalidField, validate
from sshpyk.registry import Busy
from sshpyk.runtime import SETTINGS_KEY, Runtime, default_runtime
from sshpyk.server.base import NotFound, SSHPykHandler, reply_to, status_of

TABLE = [
    ("invalid-field", InvalidField("launch_timeout", "must be a number"), 400),
    ("spec-not-found", KernelSpecNotFound("no kernelspec named 'x'", field="kernel_name"), 404),
    ("not-found", NotFound("no orphaned SSH kernel 'x'"), 404),
    ("not-ssh", NotAnSSHKernel("'x' is a local kernel", field="kernel_name"), 422),
    ("spec-conflict", KernelSpecConflict("exists", field="kernel_name"), 409),
    ("conflict", Conflict("kernel k is busy with another request"), 409),
    ("registry-busy", Busy("kernel k is being re-attached by another request"), 409),
    ("elsewhere", SSHPykError("runs on 'b', not on 'a'", kind="elsewhere"), 409),
    ("unverified", SSHPykError("its run directory names no host", kind="unverified"), 409),
    ("spec-error", KernelSpecError("the edit must be a JSON object"), 400),
    ("refused", Refused("jupyter_client is not installed", field="remote_python_prefix"), 400),
    ("ssh-failed", SSHConnectError("host 'gpu' is unreachable", kind="unreachable"), 502),
    ("sshpyk-error", SSHPykError("asking gpu failed: 255"), 502),
    ("gone", SSHPykError("the kernel ended", kind="gone"), 502),
    ("tornado-403", web.HTTPError(403, "no XSRF token"), 403),
    ("bug", ValueError("secret detail of a bug"), 500),
    ("key-error", KeyError("state"), 500),
]


@pytest.mark.parametrize(("case", "exc", "status"), TABLE, ids=[c for c, _, _ in TABLE])
def test_every_error_has_its_status(case, exc, status):
    assert status_of(exc) == status


def test_a_refusal_answers_its_message_and_field():
    status, body = reply_to(NotAnSSHKernel("'mine' is a local kernel", field="kernel_name"))
    assert (status, body) == (422, {"message": "'mine' is a local kernel", "field": "kernel_name"})


def test_no_field_means_no_field_key():
    assert reply_to(Conflict("busy")) == (409, {"message": "busy"})
    assert reply_to(SSHPykError("host down")) == (502, {"message": "host down"})


def test_invalid_field_names_the_field_in_its_message_except_for_the_body():
    assert reply_to(InvalidField("launch_timeout", "must be a number")) == (
        400,
        {
            "message": "launch_timeout: must be a number",
            "field": "launch_timeout",
            "errors": [{"field": "launch_timeout", "message": "must be a number"}],
        },
    )
    assert reply_to(InvalidField("body", "is not valid JSON (x)"))[1]["message"] == (
        "is not valid JSON (x)"
    )


def test_every_invalid_field_is_named_at_once():
    """A form shows each next to its field: the model collects them all."""
    bad = {
        "kernel_name": "k",
        "display_name": "K",
        "language": "python",
        "ssh_host_alias": "-oProxyCommand=x",
        "remote_python_prefix": "relative/path",
        "remote_kernel_name": "python3",
        "launch_timeout": 0,
    }
    with pytest.raises(InvalidFields) as e:
        validate(bad)
    status, body = reply_to(e.value)
    assert status == 400 and body["field"] == "ssh_host_alias"
    assert [x["field"] for x in body["errors"]] == [
        "ssh_host_alias",
        "remote_python_prefix",
        "launch_timeout",
    ]
    assert "(and 2 more)" in body["message"]


def test_a_bug_is_500_and_its_text_is_never_sent():
    status, body = reply_to(ValueError("secret detail of a bug"))
    assert status == 500 and "secret" not in json.dumps(body)
    assert body == {"message": "Internal Server Error"}


def test_the_store_raises_what_the_table_maps():
    with pytest.raises(KernelSpecNotFound) as e:
        kernelspecs.get_entry("no-such-spec")
    assert reply_to(e.value) == (
        404,
        {"message": "no kernelspec named 'no-such-spec'", "field": "kernel_name"},
    )


# ---- a handler that raises, run by tornado against a fake connection -----------------------


class _Connection:
    """What tornado would send, recorded instead of sent."""

    def __init__(self) -> None:
        self.start: httputil.ResponseStartLine | None = None
        self.body = b""

    def set_close_callback(self, callback) -> None:
        pass

    def _done(self) -> Future:
        f: Future = Future()
        f.set_result(None)
        return f

    def write_headers(self, start, headers, chunk=None) -> Future:
        self.start, self.headers = start, headers
        self.body += chunk or b""
        return self._done()

    def write(self, chunk) -> Future:
        self.body += chunk
        return self._done()

    def finish(self) -> None:
        pass


def _request(conn: _Connection) -> httputil.HTTPServerRequest:
    return httputil.HTTPServerRequest(
        start_line=httputil.RequestStartLine("GET", "/sshpyk/x", "HTTP/1.1"),
        headers=httputil.HTTPHeaders({"Host": "localhost"}),
        connection=conn,
    )


class _Raiser(SSHPykHandler):
    exc: BaseException | None = None

    async def prepare(self):  # no login: the table is what is under test here
        pass

    async def get(self):
        if self.exc is not None:
            raise self.exc
        self.finish({"runtime": self.runtime is self.settings.get(SETTINGS_KEY)})


async def _answer(exc: BaseException | None, **settings) -> tuple[int, dict]:
    conn = _Connection()
    raiser = type("Raiser", (_Raiser,), {"exc": exc})
    handler = raiser(web.Application([], **settings), _request(conn))
    await handler._execute([])
    assert conn.start is not None
    assert conn.headers["Content-Type"].startswith("application/json")
    return conn.start.code, json.loads(conn.body)


async def test_a_raising_handler_answers_through_the_table(caplog):
    with caplog.at_level(logging.DEBUG):
        exc = KernelSpecConflict("an SSH kernel named 'k' exists", field="kernel_name")
        got = await _answer(exc)
    assert got == (409, {"message": "an SSH kernel named 'k' exists", "field": "kernel_name"})
    # an answer, not a bug: no traceback in the log
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_host_failure_is_502_with_its_words():
    got = await _answer(SSHConnectError("host 'gpu' is unreachable: timed out"))
    assert got == (502, {"message": "host 'gpu' is unreachable: timed out"})


async def test_a_raising_handler_with_a_bug_is_500_and_logged(caplog):
    with caplog.at_level(logging.ERROR):
        got = await _answer(RuntimeError("internal detail"))
    assert got == (500, {"message": "Internal Server Error"})
    assert [r for r in caplog.records if r.exc_info and "internal detail" in str(r.exc_info[1])]


async def test_tornados_own_errors_keep_the_json_shape():
    assert await _answer(web.HTTPError(405)) == (405, {"message": "Method Not Allowed"})
    assert await _answer(web.HTTPError(403, "'_xsrf' argument missing from POST")) == (
        403,
        {"message": "'_xsrf' argument missing from POST"},
    )


async def test_handlers_get_the_servers_runtime_from_the_settings():
    assert await _answer(None, **{SETTINGS_KEY: Runtime()}) == (200, {"runtime": True})


def test_without_a_server_runtime_a_handler_shares_the_process_default():
    handler = _Raiser(web.Application([]), _request(_Connection()))
    assert handler.runtime is default_runtime()


# ---- no handler answers an error by hand ---------------------------------------------------


def _server_modules() -> list[Path]:
    return sorted(Path(sshpyk.server.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("path", _server_modules(), ids=lambda p: p.name)
def test_no_handler_sets_an_error_status_by_hand(path):
    """Every error status comes from ``base.reply_to``: a handler raises, it never calls
    ``set_status(4xx/5xx)`` or ``send_error`` itself."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, args = node.func.attr, node.args
            literal = args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, int)
            if name == "send_error" or (name == "set_status" and literal and args[0].value >= 400):
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert not found, found
