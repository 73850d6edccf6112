"""/sshpyk/status: every running SSH kernel and the state of its tunnel."""

from __future__ import annotations

import asyncio

import tornado
from jupyter_server.auth.decorator import authorized

from ..provisioner import SSHKernelProvisioner
from .base import SSHPykHandler


class StatusHandler(SSHPykHandler):
    auth_resource = "kernels"

    @tornado.web.authenticated
    @authorized
    async def get(self):
        mkm = self.kernel_manager
        found = []
        for kid in list(mkm.list_kernel_ids()):
            try:
                km = mkm.get_kernel(kid)
            except KeyError:
                continue  # shut down meanwhile
            prov = km.provisioner
            if isinstance(prov, SSHKernelProvisioner):
                found.append((kid, km, prov))
        # one ping per kernel down its monitor stream, all at once: no ssh process spawned
        await asyncio.gather(*(prov.measure_rtt() for _, _, prov in found))
        self.finish(
            {
                "kernels": [
                    {"kernel_id": kid, "kernelspec": km.kernel_name, **prov.status()}
                    for kid, km, prov in found
                ]
            }
        )
