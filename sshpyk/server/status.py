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
        # one ping per kernel down its monitor stream, all at once: no ssh process spawned
        await asyncio.gather(*(prov.measure_rtt() for _, prov in found))
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
