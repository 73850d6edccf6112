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
    from .app import load

    load(server_app)
