"""/sshpyk/status: every running SSH kernel and the state of its tunnel."""

from __future__ import annotations

import asyncio

import tornado
from jupyter_server.auth.decorator import authorized

from ..provisioner import LIVE
from .base import SSHPykHandler


class StatusHandler(SSHPykHandler):
    auth_resource = "kernels"

    @tornado.web.authenticated
    @authorized
    async def get(self):
        mkm = self.kernel_manager
        running = set(mkm.list_kernel_ids())
        # started kernels, plus those still launching (not in the kernel manager's list yet)
        found = [
            (kid, prov)
            for kid, prov in list(LIVE.items())
            if kid in running or prov.state == "launching"
        ]
        # the watchdog times the tunnel every second; only a kernel it has not timed yet
        # gets a ping of its own (down its monitor stream: no ssh process spawned)
        await asyncio.gather(*(prov.measure_rtt() for _, prov in found if prov.rtt is None))
        self.finish(
            {
                "kernels": [
                    {
                        "kernel_id": kid,
                        "kernelspec": getattr(prov.parent, "kernel_name", None),
                        **prov.status(),
                    }
                    for kid, prov in found
                ]
            }
        )
