"""One route table for every REST endpoint of the server extension.

Every handler subclasses ``APIHandler`` (JSON errors, XSRF on mutating verbs) and
every verb is ``@tornado.web.authenticated`` + ``@authorized``;
``tests/test_routes.py`` walks this table and fails on any verb that is not.
"""

from __future__ import annotations

import tornado
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .. import __version__
from .hosts import HostKernelspecsHandler, HostsHandler
from .kernels import CheckHandler, KernelHandler, KernelsHandler
from .openapi import OpenAPIHandler
from .orphans import AttachHandler, OrphanHandler, OrphansHandler
from .status import StatusHandler

NAMESPACE = "sshpyk"


class VersionHandler(APIHandler):
    """Lets the Lab UI tell when the frontend and the server extension do not match."""

    auth_resource = "kernelspecs"

    @tornado.web.authenticated
    @authorized
    def get(self):
        self.finish({"version": __version__})


# (path below <base_url>/sshpyk/, handler class)
ROUTES: list[tuple[str, type[APIHandler]]] = [
    ("kernels", KernelsHandler),
    ("kernels/([^/]+)", KernelHandler),
    ("kernels/([^/]+)/check", CheckHandler),
    ("hosts", HostsHandler),
    ("hosts/([^/]+)/kernelspecs", HostKernelspecsHandler),
    ("status", StatusHandler),
    ("orphans", OrphansHandler),
    ("orphans/([^/]+)", OrphanHandler),
    ("orphans/([^/]+)/attach", AttachHandler),
    ("version", VersionHandler),
    ("openapi.json", OpenAPIHandler),
]


def setup_route_handlers(web_app) -> None:
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$",
        [(url_path_join(base_url, NAMESPACE, path), handler) for path, handler in ROUTES],
    )
