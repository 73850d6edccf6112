"""The installed package exposes what Jupyter looks for."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import sshpyk


def test_entry_points():
    eps = entry_points(group="jupyter_client.kernel_provisioners")
    assert eps["sshpyk-provisioner"].value == "sshpyk.kernel.provisioner:SSHKernelProvisioner"
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["sshpyk"] == "sshpyk.cli:main"
    assert scripts["jupyter-sshpyk"] == "sshpyk.cli:main"


def test_jupyter_sshpyk_and_sshpyk_agree():
    bindir = sys.executable.rsplit("/", 1)[0]
    a = subprocess.run([f"{bindir}/sshpyk", "--version"], capture_output=True, text=True)
    b = subprocess.run([f"{bindir}/jupyter", "sshpyk", "--version"], capture_output=True, text=True)
    assert a.returncode == b.returncode == 0, (a.stderr, b.stderr)
    assert a.stdout.strip() == b.stdout.strip() == f"sshpyk {sshpyk.__version__}"


def test_extension_points():
    assert sshpyk._jupyter_labextension_paths() == [{"src": "labextension", "dest": "sshpyk"}]
    assert sshpyk._jupyter_server_extension_points() == [{"module": "sshpyk"}]
