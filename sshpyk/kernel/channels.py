"""How Jupyter clients reach a remote kernel's five channels: the channel path.

``ForwardChannels`` is today's path: five ``-L`` forwards on the host's master, from
127.0.0.1 ports to the kernel's endpoints (TCP ports or ipc sockets on the host).  Local
ports stay the same across restarts and master replacements, so connected clients keep
their connection info.

``ChannelPath`` is what the remote kernel object knows of a path; the second one,
``RelayChannels`` (``relay.py``), carries the channels as messages over the kernel's own SSH
session.  The kernelspec's ``channels`` chooses (``channel_path_for``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import RemoteLaunchError, SSHPykError
from ..localproc import free_local_port
from ..model import SSHKernelConfig
from ..remote import protocol
from ..remote.protocol import PORT_NAMES
from ..transport import Master, channel_answers

Log = logging.Logger | logging.LoggerAdapter
FORWARD_ATTEMPTS = 5
# after a new master: how long iopub's subscribers get to reconnect before the other channels
IOPUB_HEAD_START = 0.5
# how long a forwarded channel gets to show the kernel's greeting (no verdict after that)
CHANNEL_TIMEOUT = 5.0


def forward_specs(local_ports: list[int], remote: dict) -> list[str]:
    """The ``-L`` specs mapping ``local_ports`` to the kernel's endpoints."""
    if remote["transport"] == "ipc":
        targets = [f"{remote['ip']}-{p}" for p in remote["ports"]]
    else:
        targets = [f"127.0.0.1:{p}" for p in remote["ports"]]
    return [f"127.0.0.1:{lp}:{t}" for lp, t in zip(local_ports, targets, strict=True)]


class ChannelPath(Protocol):
    """What a remote kernel needs of a channel path."""

    local_ports: list[int] | None

    async def open(self, master: Master, remote: dict) -> None:
        """Make the kernel ``remote`` (the launcher's report) reachable on ``local_ports``."""

    async def restore(self, master: Master, remote: dict) -> None:
        """The same again on a new master (the old one died), on the same local ports."""

    async def refused(self) -> bool:
        """Whether the host now refuses the channels (so "connected" would be a lie)."""

    async def release(self, master: Master, local_ports: list[int], remote: dict) -> None:
        """Free what a previous server's path may still hold for the kernel (re-attach)."""

    async def close(self, master: Master, *, quiet: bool = False) -> None:
        """Nothing reachable any more; local ports forgotten."""

    def ports(self) -> dict[str, int]:
        """Channel port names → local ports, for the kernel's connection info."""

    def info(self) -> dict[str, Any]:
        """What jupyter_client persists of the path (``get_provisioner_info``)."""

    def load(self, info: dict[str, Any]) -> None:
        """The inverse of ``info`` (``load_provisioner_info``)."""

    async def follow(
        self, session, on_pong: Callable[[int], None], on_data: Callable[[], None]
    ) -> dict | None:
        """Read the monitor ``session`` (after its first answer) until it ends: the kernel's
        ``{"exit": code}``, or None when the stream ended without one (the link).  Pongs go
        to ``on_pong``; ``on_data()`` whenever anything else arrived (the link is alive)."""

    def ping_command(self, n: int) -> bytes:
        """``ping n`` as the monitor stream takes it (answered by ``on_pong(n)``)."""

    def reattached(self, watchers: int) -> None:
        """The kernel was taken up after a server restart; ``watchers``: subscribers the
        host application adds before any client (jupyter_server's activity watcher)."""

    def signal_command(self, n: int) -> bytes:
        """``signal n`` (to the kernel's process group) as the monitor stream takes it."""


def channel_path_for(cfg: SSHKernelConfig, log: Log) -> ChannelPath:
    """The channel path a kernelspec asks for."""
    if cfg.channels == "relay":
        from .relay import RelayChannels  # pyzmq's asyncio layer only where it is used

        return RelayChannels(cfg.ssh_host_alias, log, cfg.journal_limit_mb << 20)
    return ForwardChannels(cfg.ssh_host_alias, log)


class ForwardChannels:
    """Five ssh port forwards on the host's master."""

    def __init__(self, alias: str, log: Log):
        self.alias = alias
        self.log = log
        self.local_ports: list[int] | None = None
        self.forwards: list[str] = []  # the -L specs now active on the master

    def ports(self) -> dict[str, int]:
        if self.local_ports is None:
            return {}
        return dict(zip(PORT_NAMES, self.local_ports, strict=True))

    async def open(self, master: Master, remote: dict) -> None:
        """Map the kernel's endpoints to 127.0.0.1 ports, keeping the local ports across
        restarts (connected clients stay connected); a port taken meanwhile is replaced."""
        # Even when the restarter asks for "new ports" (it assumes a port could not be bound
        # locally) the local ones stay: they are our forwards, the remote picks its own.
        if self.local_ports is None:
            self.local_ports = [free_local_port() for _ in PORT_NAMES]
        if self.forwards:  # a restarted kernel's old endpoints
            await master.cancel(self.forwards)
            self.forwards = []
        for _attempt in range(FORWARD_ATTEMPTS):
            specs = forward_specs(self.local_ports, remote)
            ok, err = await master.forward(specs)
            if ok:
                self.forwards = specs
                break
            # some local port was taken between choice and bind: drop what did bind, retry
            await master.cancel(specs)
            self.log.warning("sshpyk: forwarding failed (%s), retrying with new ports", err)
            self.local_ports = [free_local_port() for _ in PORT_NAMES]
        else:
            raise RemoteLaunchError(
                "could not forward the kernel's ports to 127.0.0.1", kind="forward_failed"
            )
        await self._prove(master, remote["transport"])

    async def _prove(self, master: Master, transport: str) -> None:
        # -O forward only binds the local port; the host decides when a channel opens.  Its
        # sshd decides once per connection (AllowTcpForwarding/AllowStreamLocalForwarding),
        # so a master that has opened one of this transport is not asked again.
        proven = (master.identity, transport)
        hb = self.ports()["hb_port"]
        answer = None
        if proven not in master.forwarding_works:
            answer = await channel_answers(hb, CHANNEL_TIMEOUT)
        if answer and master.identity is not None:
            master.forwarding_works.add(proven)
        if answer is False:
            ipc = transport == "ipc"
            via = "stream-local" if ipc else "TCP"
            option = "AllowStreamLocalForwarding" if ipc else "AllowTcpForwarding"
            raise RemoteLaunchError(
                f"{self.alias!r} refuses to forward the kernel's channels: its sshd "
                f"forbids {via} port forwarding ({option} no), which `channels: forward` "
                "needs (`sshpyk check` tests it): set `channels: relay` in this kernelspec "
                "(no forwarding needed)" + ("; or `transport: tcp`" if via != "TCP" else ""),
                # ipc is the default: a host may allow TCP forwarding only
                kind="forwarding_refused",
            )

    async def restore(self, master: Master, remote: dict) -> None:
        """Put the forwards back on a new master, on the same local ports.  Clients were
        cut off and reconnect on their own, each socket on its own timer: iopub goes first,
        so that its subscribers are back before a queued request can make output (a PUB
        drops what it publishes while nobody is subscribed)."""
        if self.local_ports is None:  # a re-attach: the old server's ports are not ours
            await self.open(master, remote)
            return
        specs = forward_specs(self.local_ports, remote)
        iopub = PORT_NAMES.index("iopub_port")
        first, _ = await master.forward([specs[iopub]])
        if first:
            await asyncio.sleep(IOPUB_HEAD_START)
        rest, _ = await master.forward(specs[:iopub] + specs[iopub + 1 :])
        if first and rest:
            self.forwards = specs
            return
        # a local port was taken meanwhile: the general path, which picks new ones
        await master.cancel(specs)
        self.forwards = []
        await self.open(master, remote)

    async def refused(self, names: tuple[str, ...] = ("iopub_port", "hb_port")) -> bool:
        """Whether ssh refuses the forwarded channels to the kernel (see ``channel_answers``):
        "connected" must never be shown while a client's connection would be cut off."""
        ports = self.ports()
        answers = await asyncio.gather(*(channel_answers(ports[n], CHANNEL_TIMEOUT) for n in names))
        return any(a is False for a in answers)

    async def release(self, master: Master, local_ports: list[int], remote: dict) -> None:
        """Free ports a previous server's forwards may still hold on a surviving master."""
        await master.cancel(forward_specs(local_ports, remote))

    async def close(self, master: Master, *, quiet: bool = False) -> None:
        if self.forwards:
            try:
                await master.cancel(self.forwards)
            except (SSHPykError, asyncio.TimeoutError, OSError):
                if not quiet:
                    raise
        self.forwards = []
        self.local_ports = None

    def info(self) -> dict[str, Any]:
        return {"local_ports": self.local_ports, "forwards": self.forwards}

    async def follow(
        self, session, on_pong: Callable[[int], None], on_data: Callable[[], None] = lambda: None
    ) -> dict | None:
        """The launcher's (or attach's) lines: pongs until the exit report or EOF."""
        while True:
            msg = await protocol.read_message(session.stdout)
            if msg is None or protocol.EXIT in msg:
                return msg
            if protocol.PONG in msg:
                on_pong(msg[protocol.PONG])

    def ping_command(self, n: int) -> bytes:
        return protocol.ping_command(n)

    def reattached(self, watchers: int) -> None:
        """Nothing is replayed: what the kernel said while nobody listened is gone."""

    def signal_command(self, n: int) -> bytes:
        return protocol.signal_command(n)

    def load(self, info: dict[str, Any]) -> None:
        self.local_ports = info.get("local_ports")
        self.forwards = list(info.get("forwards") or [])
