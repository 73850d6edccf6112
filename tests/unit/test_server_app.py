"""``sshpyk/app.py``, the server extension's setup, against a stand-in for the server app: what
it puts in the web app's settings, which routes it adds, and the warning about kernels an
earlier server left running.  (The real server loading it: tests/integration/test_routes.py.)"""

from __future__ import annotations

import logging
import re

from traitlets.config import Configurable

from sshpyk import _load_jupyter_server_extension, app, registry
from sshpyk.registry import Record
from sshpyk.runtime import SETTINGS_KEY, Runtime, runtime_of
from sshpyk.server import settings
from sshpyk.server.routes import ROUTES


class _WebApp:
    def __init__(self, base_url: str = "/base/") -> None:
        self.settings: dict = {"base_url": base_url}
        self.handlers: list = []

    def add_handlers(self, host: str, handlers: list) -> None:
        self.handlers += handlers


class _ServerApp(Configurable):
    """What ``load`` uses of a jupyter_server ServerApp (a Configurable: the settings'
    parent; the end of a provisioner's ``parent`` chain)."""

    def __init__(self) -> None:
        super().__init__()
        self.web_app = _WebApp()
        self.log = logging.getLogger("test-server-app")


def _loaded() -> _ServerApp:
    server = _ServerApp()
    _load_jupyter_server_extension(server)
    return server


def test_load_puts_a_runtime_and_the_settings_in_the_web_app():
    server = _loaded()
    found = server.web_app.settings[SETTINGS_KEY]
    assert isinstance(found, Runtime)
    assert isinstance(server.web_app.settings[settings.SETTINGS_KEY], settings.SSHPykSettings)
    assert settings.settings_of(server.web_app.settings).ssh == "ssh"


def test_each_server_has_its_own_runtime_found_through_the_parent_chain():
    one, two = _loaded(), _loaded()
    assert one.web_app.settings[SETTINGS_KEY] is not two.web_app.settings[SETTINGS_KEY]

    class Child:  # a provisioner → kernel manager → multi-kernel manager → server app
        def __init__(self, parent):
            self.parent = parent

    assert runtime_of(Child(Child(one))) is one.web_app.settings[SETTINGS_KEY]


def test_every_route_is_added_below_base_url_and_the_namespace():
    server = _loaded()
    paths = [path for path, _ in server.web_app.handlers]
    assert paths == [f"/base/sshpyk/{p}" for p, _ in ROUTES]
    assert "/base/sshpyk/kernelspecs" in paths and "/base/sshpyk/kernels" in paths
    # path arguments are named groups, passed to the verbs by name
    assert all(re.fullmatch(r"[\w./]*(\(\?P<\w+>\[\^/\]\+\)[\w./]*)*", p) for p, _ in ROUTES), (
        ROUTES
    )


def test_kernelspec_routes_and_their_old_names_share_their_handlers():
    table = dict(ROUTES)
    for path, handler in ROUTES:
        if path == "kernelspecs" or path.startswith("kernelspecs/"):
            assert table["kernels" + path[len("kernelspecs") :]] is handler


def _orphan(kernel_id: str) -> Record:
    return Record(
        kernel_id=kernel_id,
        kernelspec="ssh-remote",
        display_name="SSH remote",
        config={"ssh_host_alias": "remote", "remote_python_prefix": "/opt/env"},
        remote={"pid": 4242},
        key="k",
        signature_scheme="hmac-sha256",
        started_at=1.0,
        server_pid=-1,  # abandoned: an orphan whatever runs now
    )


def test_kernels_left_by_an_earlier_server_are_counted_at_start(caplog):
    assert app.orphans_left() == 0
    registry.save(_orphan("k1"))
    registry.save(_orphan("k2"))
    assert app.orphans_left() == 2
    with caplog.at_level(logging.WARNING, logger="test-server-app"):
        _loaded()
    assert "2 SSH kernel(s) may still run from an earlier server" in caplog.text


def test_a_broken_registry_never_keeps_the_server_from_starting(monkeypatch, caplog):
    def broken():
        raise OSError("the runtime dir is not readable")

    monkeypatch.setattr(registry, "all_records", broken)
    assert app.orphans_left() == 0
    with caplog.at_level(logging.INFO, logger="test-server-app"):
        server = _loaded()
    assert server.web_app.handlers and "extension loaded" in caplog.text
