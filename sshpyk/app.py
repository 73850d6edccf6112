"""The server extension's setup: what ``_load_jupyter_server_extension`` does.

It puts two objects in the web app's settings, where handlers (``server/base.py``) and
provisioners (``runtime.runtime_of``) find them: the operator's ``SSHPykSettings`` and this
server's ``Runtime`` (live kernels, pending re-attaches, shared mounts, masters).  Then it adds
the routes, and warns of kernels an earlier server left running.
"""

from __future__ import annotations

from . import __version__, registry, runtime
from .local_platform import UnsupportedPlatform, check_platform, raise_open_files_limit
from .login.logins import Logins
from .server import settings
from .server.routes import setup_route_handlers


def load(server_app) -> None:
    try:
        check_platform()
    except UnsupportedPlatform as e:  # the server runs on; its SSH kernels cannot
        server_app.log.error("sshpyk: %s", e)
        return
    # macOS starts a process with 256 open files; each kernel costs a few dozen
    raise_open_files_limit()
    web_app = server_app.web_app
    web_app.settings[settings.SETTINGS_KEY] = settings.SSHPykSettings(parent=server_app)
    rt = web_app.settings[runtime.SETTINGS_KEY] = runtime.Runtime()
    rt.logins = Logins(rt.masters)  # a host that wants a login asks in Lab (sshpyk.login)
    setup_route_handlers(web_app)
    server_app.log.info("sshpyk %s server extension loaded", __version__)
    left = orphans_left()
    if left:
        server_app.log.warning(
            "sshpyk: %d SSH kernel(s) may still run from an earlier server: re-attach or shut "
            "them down from the SSH Kernels sidebar, or see `sshpyk ps`",
            left,
        )


def orphans_left() -> int:
    """How many registry records belong to no running server (0 if the registry is broken)."""
    try:
        return sum(1 for r in registry.all_records()[0] if r.orphan)
    except Exception:  # a broken registry must not keep the server from starting
        return 0
