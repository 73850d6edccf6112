"""The server extension's REST routes, against a real jupyter_server (jp_fetch)."""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap

import pytest
import tornado
from jupyter_server.auth.authorizer import Authorizer

from sshpyk import __version__
from sshpyk.server.routes import ROUTES

VERBS = ("get", "post", "put", "patch", "delete", "head", "options")


def _decorators(func) -> list[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    return [ast.unparse(d) for d in tree.body[0].decorator_list]


def _own_verbs(handler) -> dict:
    """Every HTTP verb the handler or one of our base classes defines (not tornado's)."""
    found = {}
    for klass in reversed(handler.__mro__):
        if klass.__module__.startswith("sshpyk"):
            found.update({v: vars(klass)[v] for v in VERBS if v in vars(klass)})
    return found


def _example(path: str) -> str:
    """The route with each named group (``(?P<name>[^/]+)``) filled in."""
    return re.sub(r"\(\?P<\w+>[^)]*\)", "python3", path)


def _verb_cases():
    return [(path, handler, verb) for path, handler in ROUTES for verb in _own_verbs(handler)]


@pytest.mark.parametrize(("path", "handler"), ROUTES, ids=[p for p, _ in ROUTES])
def test_every_verb_is_authenticated_and_authorized(path, handler):
    verbs = _own_verbs(handler)
    assert verbs, f"{handler.__name__} handles no verb"
    assert getattr(handler, "auth_resource", None) in {"kernelspecs", "kernels"}
    for verb, func in verbs.items():
        decorators = _decorators(func)
        # authenticated must run first (outermost), then the authorizer
        assert decorators[:2] == ["tornado.web.authenticated", "authorized"], (
            f"{handler.__name__}.{verb} is decorated {decorators}"
        )


async def test_version(jp_fetch):
    response = await jp_fetch("sshpyk", "version")
    assert response.code == 200
    assert json.loads(response.body) == {"version": __version__}


@pytest.mark.parametrize(
    ("path", "handler", "verb"), _verb_cases(), ids=[f"{v}-{p}" for p, _, v in _verb_cases()]
)
async def test_no_token_no_access(jp_fetch, path, handler, verb):
    body = b"{}" if verb in ("post", "patch") else None
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_fetch(
            "sshpyk",
            _example(path),
            method=verb.upper(),
            body=body,
            headers={"Authorization": ""},
            allow_nonstandard_methods=True,
        )
    assert e.value.code == 403


class DenyAll(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        return False


@pytest.fixture
def deny_all_config(jp_server_config):
    jp_server_config["ServerApp"]["authorizer_class"] = DenyAll
    return jp_server_config


@pytest.mark.parametrize(
    ("path", "handler", "verb"), _verb_cases(), ids=[f"{v}-{p}" for p, _, v in _verb_cases()]
)
async def test_authorizer_is_consulted(deny_all_config, jp_fetch, path, handler, verb):
    body = b"{}" if verb in ("post", "patch") else None
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_fetch(
            "sshpyk", _example(path), method=verb.upper(), body=body, allow_nonstandard_methods=True
        )
    assert e.value.code == 403
