"""Server configuration for the Galata integration tests.

`configure_jupyter_server` opens the server without a token on port 8888 and
points it at a temporary root directory.
"""

import os
from tempfile import mkdtemp

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821

# CI containers run as root; without this `jupyter lab` exits at once and
# Playwright only reports that the webServer could not start.
c.ServerApp.allow_root = True  # noqa: F821

# The tests add and delete SSH kernels: keep them (and the user's own
# kernelspecs and Lab settings) apart, so every run starts from the empty state.
os.environ["JUPYTER_DATA_DIR"] = mkdtemp(prefix="galata-sshpyk-data-")
c.LabApp.user_settings_dir = mkdtemp(prefix="galata-sshpyk-settings-")  # noqa: F821

# Uncomment to set server log level to debug level
# c.ServerApp.log_level = "DEBUG"
