"""sshpyk: remote Jupyter kernels over SSH, managed from inside JupyterLab."""

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    import warnings

    warnings.warn("Importing 'sshpyk' outside a proper installation.", stacklevel=2)
    __version__ = "dev"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "sshpyk"}]


def _jupyter_server_extension_points():
    return [{"module": "sshpyk"}]


def _load_jupyter_server_extension(server_app):
    from .server.routes import setup_route_handlers
    from .server.settings import SSHPykSettings

    server_app.web_app.settings["sshpyk_settings"] = SSHPykSettings(parent=server_app)
    setup_route_handlers(server_app.web_app)
    server_app.log.info("sshpyk %s server extension loaded", __version__)
    try:
        from . import registry

        left = [r for r in registry.all_records()[0] if r.orphan]
    except Exception:  # a broken registry must not keep the server from starting
        left = []
    if left:
        server_app.log.warning(
            "sshpyk: %d SSH kernel(s) may still run from an earlier server: re-attach or shut "
            "them down from the SSH Kernels sidebar, or see `sshpyk ps`",
            len(left),
        )
