"""What the server's operator configures for sshpyk (``jupyter_server_config.py``)."""

from __future__ import annotations

from traitlets import Unicode
from traitlets.config import Configurable

# where the server extension (``sshpyk/app.py``) keeps the instance in the web app's settings
SETTINGS_KEY = "sshpyk_settings"


class SSHPykSettings(Configurable):
    """``c.SSHPykSettings.ssh = "/usr/local/bin/ssh"`` and so on."""

    ssh = Unicode(
        "ssh",
        help="The OpenSSH client that host and kernelspec discovery runs. A request never "
        "chooses it (it would choose a program to run); a kernelspec's own `ssh` is used for "
        "that kernel's launches and checks.",
    ).tag(config=True)


def settings_of(web_app_settings: dict) -> SSHPykSettings:
    """The instance the extension put in the web app's settings (defaults if none)."""
    return web_app_settings.get(SETTINGS_KEY) or SSHPykSettings()
