"""/sshpyk/status: every running SSH kernel and the state of its tunnel; and
/sshpyk/kernels/{kernel_id}/cancel: stop a launch in progress (a Slurm job in the queue)."""

from __future__ import annotations

import asyncio

import tornado
from jupyter_server.auth.decorator import authorized

from ..states import TunnelState
from .base import NotFound, SSHPykHandler


class StatusHandler(SSHPykHandler):
    auth_resource = "kernels"

    @tornado.web.authenticated
    @authorized
    async def get(self):
        running = set(self.kernel_manager.list_kernel_ids())
        # started kernels, plus those still launching (not in the kernel manager's list yet);
        # the handler knows a kernel only by its ``status()``, ``measure_rtt()`` and ``parent``
        found = [
            (kid, prov, prov.status())
            for kid, prov in list(self.runtime.kernels.items())
            if kid in running or prov.status()["state"] == TunnelState.LAUNCHING
        ]
        # the watchdog times the tunnel every second; only a kernel it has not timed yet
        # gets a ping of its own (down its monitor stream: no ssh process spawned)
        await asyncio.gather(*(p.measure_rtt() for _, p, st in found if st["rtt_ms"] is None))
        kernels = [
            {
                "kernel_id": kid,
                "kernelspec": getattr(prov.parent, "kernel_name", None),
                **prov.status(),
            }
            for kid, prov, _ in found
        ]
        # kernels whose allocation ended (a Slurm job's time limit): dropped by the kernel
        # manager, still listed a while as dead with the reason, for Lab to say why
        listed = {k["kernel_id"] for k in kernels}
        for kid, status in self.runtime.recently_ended().items():
            if kid not in listed:
                kernels.append({"kernel_id": kid, **status})
        self.finish({"kernels": kernels})


class CancelLaunchHandler(SSHPykHandler):
    """A launch can take as long as a batch queue: Lab's Cancel ends it (and its job)."""

    auth_resource = "kernels"

    @tornado.web.authenticated
    @authorized
    async def post(self, kernel_id: str):
        prov = self.runtime.kernels.get(kernel_id)
        if prov is None or not prov.cancel_launch():
            raise NotFound(f"no launch of kernel {kernel_id} is in progress")
        self.set_status(204)
        self.finish()
