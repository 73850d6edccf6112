"""/sshpyk/orphans: SSH kernels still running whose Jupyter server is gone (it was killed,
or crashed): list them, re-attach one (it becomes one of this server's kernels, state
intact), or shut it down.

One request at a time per kernel: a second re-attach of the same kernel while the first runs
would give it two kernel managers, and the one MultiKernelManager forgets would restart the
kernel behind the user's back.  So a request claims the kernel first, in this server (its
runtime's ``orphan_requests``) and across processes sharing the registry
(``registry.claim``), and answers 409 if it cannot.  GET changes nothing: stale records are
forgotten by DELETE, by a re-attach that finds the kernel gone, and by ``sshpyk reap``."""

from __future__ import annotations

import asyncio

import tornado
from jupyter_server.auth.decorator import authorized

from .. import orphans, registry
from ..errors import Conflict, SSHPykError
from .base import NotFound, SSHPykHandler


def _orphan_records(running: set[str]) -> list[registry.Record]:
    records, _ = registry.all_records()
    return [r for r in records if r.kernel_id not in running and r.orphan]


def running_here(handler: SSHPykHandler) -> set[str]:
    """The kernels this server has started (a re-attach in flight is refused by the runtime
    and the registry's claim, and stays listed until it has taken the kernel up)."""
    return set(handler.kernel_manager.list_kernel_ids())


class OrphansHandler(SSHPykHandler):
    auth_resource = "kernels"

    @tornado.web.authenticated
    @authorized
    async def get(self):
        running = running_here(self)
        records = await asyncio.get_running_loop().run_in_executor(None, _orphan_records, running)
        found = await orphans.probe(records)
        # a kernel that ended meanwhile is only a stale record: not listed, but kept (a GET
        # changes nothing; DELETE or `sshpyk reap` forget it)
        self.finish({"kernels": [e for e in found if e["alive"] or not e["reachable"]]})


class OrphanHandler(SSHPykHandler):
    """A host that will not act on the kernel (its run dir is another host's, or cannot be
    verified) raises ``SSHPykError`` of kind ``elsewhere``/``unverified``: 409, see
    ``base.CONFLICT_KINDS``."""

    auth_resource = "kernels"

    async def _claimed(self, kernel_id: str, work) -> None:
        """Run ``work(record)`` holding the kernel against every other request (409)."""
        if kernel_id in self.runtime.orphan_requests:
            raise Conflict(f"kernel {kernel_id} is busy with another request")
        self._record(kernel_id)  # 404 before anything is claimed (and for what is not an id)
        self.runtime.orphan_requests.add(kernel_id)
        try:
            with registry.claim(kernel_id):  # registry.Busy (409) if another process holds it
                # read again: a request that held the claim before may have taken it
                await work(self._record(kernel_id))
        finally:
            self.runtime.orphan_requests.discard(kernel_id)

    def _record(self, kernel_id: str) -> registry.Record:
        """The kernel's record, if it is an orphan now; ``NotFound`` otherwise."""
        try:
            rec = registry.load(kernel_id)
        except (SSHPykError, ValueError, TypeError):  # not a kernel id, or a broken record
            rec = None
        if rec is None or kernel_id in running_here(self) or not rec.orphan:
            raise NotFound(f"no orphaned SSH kernel {kernel_id!r}")
        return rec

    @tornado.web.authenticated
    @authorized
    async def delete(self, kernel_id: str):
        await self._claimed(kernel_id, self._shut_down)

    async def _shut_down(self, rec: registry.Record) -> None:
        try:
            await orphans.shut_down(rec)
        except (asyncio.TimeoutError, OSError) as e:  # the link or the host failed: 502
            raise SSHPykError(str(e)) from e
        self.set_status(204)
        self.finish()


class AttachHandler(OrphanHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, kernel_id: str):
        await self._claimed(kernel_id, self._attach)

    async def _attach(self, rec: registry.Record) -> None:
        kernel_id = rec.kernel_id
        mkm = self.kernel_manager
        if rec.kernelspec not in self.kernel_spec_manager.find_kernel_specs():
            raise Conflict(
                f"its kernelspec {rec.kernelspec!r} no longer exists: "
                "add it again to re-attach, or shut the kernel down"
            )
        # the provisioner takes the record up instead of launching (see Runtime.expect_attach)
        self.runtime.expect_attach(kernel_id, rec)
        try:
            await mkm.start_kernel(kernel_name=rec.kernelspec, kernel_id=kernel_id)
        except SSHPykError as e:
            if e.kind == "gone":  # it ended meanwhile: only a stale record is left
                registry.remove(kernel_id)
            raise
        finally:
            self.runtime.cancel_attach(kernel_id)
        model = mkm.kernel_model(kernel_id)
        if asyncio.iscoroutine(model):
            model = await model
        self.set_status(201)
        self.finish(model)
