"""Server configuration for the Galata integration tests.

`configure_jupyter_server` opens the server without a token on port 8888 and
points it at a temporary root directory.
"""

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821

# CI containers run as root; without this `jupyter lab` exits at once and
# Playwright only reports that the webServer could not start.
c.ServerApp.allow_root = True  # noqa: F821

# Uncomment to set server log level to debug level
# c.ServerApp.log_level = "DEBUG"
