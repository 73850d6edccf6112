"""The forward channel path's pure parts: the -L specs and what clients are told."""

from __future__ import annotations

import logging

import pytest

from sshpyk.kernel.channels import ForwardChannels, forward_specs
from sshpyk.remote.protocol import PORT_NAMES


def test_tcp_specs_map_local_ports_to_the_kernels_loopback_ports():
    remote = {"transport": "tcp", "ports": [5001, 5002, 5003, 5004, 5005]}
    assert forward_specs([1, 2, 3, 4, 5], remote) == [
        f"127.0.0.1:{lp}:127.0.0.1:{rp}"
        for lp, rp in zip([1, 2, 3, 4, 5], remote["ports"], strict=True)
    ]


def test_ipc_specs_map_local_ports_to_the_kernels_sockets():
    remote = {"transport": "ipc", "ip": "/run/u/sshpyk/ab/kernel", "ports": [1, 2, 3, 4, 5]}
    specs = forward_specs([11, 12, 13, 14, 15], remote)
    assert specs[0] == "127.0.0.1:11:/run/u/sshpyk/ab/kernel-1"
    assert specs[4] == "127.0.0.1:15:/run/u/sshpyk/ab/kernel-5"
    # ssh's -L syntax: the socket path is everything after the second colon
    assert all(s.split(":", 2)[2].startswith("/") for s in specs)


def test_specs_refuse_a_wrong_number_of_ports():
    with pytest.raises(ValueError):
        forward_specs([1, 2, 3], {"transport": "tcp", "ports": [1, 2, 3, 4, 5]})


def test_ports_are_named_in_the_protocols_channel_order():
    ch = ForwardChannels("h", logging.getLogger("t"))
    assert ch.ports() == {}
    ch.local_ports = [21, 22, 23, 24, 25]
    assert ch.ports() == dict(zip(PORT_NAMES, [21, 22, 23, 24, 25], strict=True))
    assert list(ch.ports())[1] == "iopub_port"


class FakeMaster:
    """Records the forward/cancel calls a channel path makes; forwards fail on demand."""

    identity = (1, 2)

    def __init__(self, fail_first: int = 0):
        self.calls: list[tuple[str, list[str]]] = []
        self.fail_first = fail_first
        self.forwarding_works = {((1, 2), "tcp")}  # proven: no probe of a real port

    async def forward(self, specs):
        self.calls.append(("forward", list(specs)))
        if self.fail_first:
            self.fail_first -= 1
            return False, "bind: Address already in use"
        return True, ""

    async def cancel(self, specs):
        self.calls.append(("cancel", list(specs)))


async def test_a_taken_port_is_retried_with_new_ports():
    master = FakeMaster(fail_first=1)
    ch = ForwardChannels("h", logging.getLogger("t"))
    remote = {"transport": "tcp", "ports": [1, 2, 3, 4, 5]}
    await ch.open(master, remote)
    kinds = [k for k, _ in master.calls]
    assert kinds == ["forward", "cancel", "forward"]
    assert master.calls[0][1] != master.calls[2][1]  # new local ports the second time
    assert ch.forwards == master.calls[2][1]


async def test_a_restart_keeps_the_local_ports_and_replaces_the_old_forwards():
    master = FakeMaster()
    ch = ForwardChannels("h", logging.getLogger("t"))
    await ch.open(master, {"transport": "tcp", "ports": [1, 2, 3, 4, 5]})
    ports, old = list(ch.local_ports), list(ch.forwards)
    await ch.open(master, {"transport": "tcp", "ports": [6, 7, 8, 9, 10]})
    assert ch.local_ports == ports
    assert ("cancel", old) in master.calls
    assert ch.forwards == forward_specs(ports, {"transport": "tcp", "ports": [6, 7, 8, 9, 10]})


async def test_restore_puts_iopub_back_first(monkeypatch):
    import sshpyk.kernel.channels as channels

    monkeypatch.setattr(channels, "IOPUB_HEAD_START", 0)
    master = FakeMaster()
    ch = ForwardChannels("h", logging.getLogger("t"))
    ch.local_ports = [31, 32, 33, 34, 35]
    remote = {"transport": "tcp", "ports": [1, 2, 3, 4, 5]}
    await ch.restore(master, remote)
    specs = forward_specs(ch.local_ports, remote)
    assert master.calls[0] == ("forward", [specs[1]])
    assert master.calls[1] == ("forward", [specs[0], *specs[2:]])
    assert ch.forwards == specs


async def test_close_forgets_everything():
    master = FakeMaster()
    ch = ForwardChannels("h", logging.getLogger("t"))
    await ch.open(master, {"transport": "tcp", "ports": [1, 2, 3, 4, 5]})
    specs = list(ch.forwards)
    await ch.close(master)
    assert master.calls[-1] == ("cancel", specs)
    assert ch.forwards == [] and ch.local_ports is None
