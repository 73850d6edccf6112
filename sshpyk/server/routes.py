"""One route table for every REST endpoint of the server extension.

Every handler subclasses ``APIHandler`` (JSON errors, XSRF on mutating verbs) and
every verb is ``@tornado.web.authenticated`` + ``@authorized``;
``tests/integration/test_routes.py`` walks this table and fails on any verb that is not.
Path arguments are named groups: tornado passes them to the verbs by name.
"""

from __future__ import annotations

import tornado
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .. import __version__
from .discover import EnvironmentsHandler
from .hosts import HostKernelspecsHandler, HostsHandler
from .logins import LoginAnswerHandler, LoginCancelHandler, LoginsHandler
from .openapi import OpenAPIHandler
from .orphans import AttachHandler, OrphanHandler, OrphansHandler
from .specs import CheckHandler, SpecHandler, SpecsHandler
from .status import CancelLaunchHandler, StatusHandler

NAMESPACE = "sshpyk"


class VersionHandler(APIHandler):
    """Lets the Lab UI tell when the frontend and the server extension do not match."""

    auth_resource = "kernelspecs"

    @tornado.web.authenticated
    @authorized
    def get(self):
        self.finish({"version": __version__})


def _arg(name: str) -> str:
    """One path segment, passed to the handler's verb as the keyword ``name``."""
    return f"(?P<{name}>[^/]+)"


# (path below <base_url>/sshpyk/, handler class)
CURRENT: list[tuple[str, type[APIHandler]]] = [
    ("kernelspecs", SpecsHandler),
    (f"kernelspecs/{_arg('name')}", SpecHandler),
    (f"kernelspecs/{_arg('name')}/check", CheckHandler),
    ("hosts", HostsHandler),
    (f"hosts/{_arg('alias')}/kernelspecs", HostKernelspecsHandler),
    (f"hosts/{_arg('alias')}/environments", EnvironmentsHandler),
    ("status", StatusHandler),
    (f"kernels/{_arg('kernel_id')}/cancel", CancelLaunchHandler),
    ("orphans", OrphansHandler),
    (f"orphans/{_arg('kernel_id')}", OrphanHandler),
    (f"orphans/{_arg('kernel_id')}/attach", AttachHandler),
    ("logins", LoginsHandler),
    (f"logins/{_arg('login_id')}/answer", LoginAnswerHandler),
    (f"logins/{_arg('login_id')}/cancel", LoginCancelHandler),
    ("version", VersionHandler),
    ("openapi.json", OpenAPIHandler),
]
# The kernelspec routes' old name ("kernels" meant kernelspecs), answered by the same handlers
# for one release (deprecated in the OpenAPI document); drop after the next release.
OLD, NEW = "kernels", "kernelspecs"
ALIASES: list[tuple[str, type[APIHandler]]] = [
    (OLD + path[len(NEW) :], handler)
    for path, handler in CURRENT
    if path == NEW or path.startswith(NEW + "/")
]
ROUTES = CURRENT + ALIASES


def setup_route_handlers(web_app) -> None:
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$",
        [(url_path_join(base_url, NAMESPACE, path), handler) for path, handler in ROUTES],
    )
