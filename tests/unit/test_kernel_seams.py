"""The seams a second channel path and a second launch backend plug into, without touching
the jupyter_client adapter."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import sshpyk.kernel.provisioner as adapter
from sshpyk.kernel.backend import Direct, LaunchBackend, backend_for
from sshpyk.kernel.channels import ChannelPath, ForwardChannels, channel_path_for
from sshpyk.model import SSHKernelConfig
from sshpyk.remote.protocol import python_command

CFG = SSHKernelConfig.from_dict(
    {"ssh_host_alias": "h", "remote_python_prefix": "/opt/py", "remote_kernel_name": "python3"}
)


def _names_used(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
    return names


def test_the_adapter_names_no_concrete_channel_path_or_backend():
    used = _names_used(Path(adapter.__file__))
    assert not used & {"ForwardChannels", "Direct"}, used & {"ForwardChannels", "Direct"}
    assert {"channel_path_for", "backend_for"} <= used


def test_todays_kernelspec_gets_the_forwards_and_the_direct_backend():
    path = channel_path_for(CFG, logging.getLogger("t"))
    assert isinstance(path, ForwardChannels)
    assert isinstance(backend_for(CFG, "k1"), Direct)


def test_the_concrete_classes_have_every_method_of_their_seam():
    for proto, cls in ((ChannelPath, ForwardChannels), (LaunchBackend, Direct)):
        wanted = {n for n, v in vars(proto).items() if callable(v) and not n.startswith("_")}
        assert wanted, proto
        missing = {n for n in wanted if not callable(getattr(cls, n, None))}
        assert not missing, (cls, missing)


async def test_direct_runs_programs_on_the_ssh_host_and_holds_nothing():
    d = Direct()
    assert d.command("/opt/py") == python_command("/opt/py", preload="launcher")
    steps = []
    assert await d.prepare(None, steps.append, 1.0) is None
    assert steps == []  # nothing to wait for
    assert await d.release(None) is None
    assert d.describe() == {}


def test_channel_info_round_trips():
    a = ForwardChannels("h", logging.getLogger("t"))
    a.local_ports, a.forwards = [1, 2, 3, 4, 5], ["127.0.0.1:1:127.0.0.1:9"]
    b = ForwardChannels("h", logging.getLogger("t"))
    b.load(a.info())
    assert (b.local_ports, b.forwards) == (a.local_ports, a.forwards)
    b.load({})
    assert (b.local_ports, b.forwards) == (None, [])
