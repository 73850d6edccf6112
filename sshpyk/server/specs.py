"""/sshpyk/kernelspecs: SSH kernelspec CRUD and health checks.

(``/sshpyk/kernels`` answers too, for one release: the name it had when "kernels" meant
kernelspecs.)  Every refusal is raised by the store or the model and answered by
``base.reply_to``.
"""

from __future__ import annotations

import asyncio
import json

import tornado
from jupyter_server.auth.decorator import authorized

from .. import kernelspecs
from ..checks import check_many
from ..model import validate
from ..states import CheckStatus
from .base import SSHPykHandler


async def _store(fn, *args, **kw):
    """The kernelspec store touches files: keep it off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))


class _SpecsHandler(SSHPykHandler):
    auth_resource = "kernelspecs"

    def _refresh_specs(self) -> None:
        ksm = self.settings.get("kernel_spec_manager")
        # a caching spec manager must forget what it knew, so /api/kernelspecs is right at once
        for name in ("_cache", "cache_items"):
            cache = getattr(ksm, name, None)
            if isinstance(cache, dict):
                cache.clear()


class SpecsHandler(_SpecsHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        entries = await _store(kernelspecs.list_entries)
        self.finish({"kernels": [e.to_dict() for e in entries]})

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body()
        validate(body)  # the model's message, before anything touches the disk
        entry = await _store(kernelspecs.write, body)
        self._refresh_specs()
        self.set_status(201)
        self.set_header("Location", self.request.path.rstrip("/") + "/" + entry.name)
        self.finish(entry.to_dict())


class SpecHandler(_SpecsHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, name: str):
        entry = await _store(kernelspecs.get_entry, name)
        self.finish(entry.to_dict())

    @tornado.web.authenticated
    @authorized
    async def patch(self, name: str):
        entry = await _store(kernelspecs.update, name, self.json_body())
        self._refresh_specs()
        self.finish(entry.to_dict())

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str):
        await _store(kernelspecs.delete, name)
        self._refresh_specs()
        self.set_status(204)
        self.finish()


class CheckHandler(SSHPykHandler):
    """Runs every check of one SSH kernel.  With ``?stream=1`` the answer is NDJSON, one
    line per check as it finishes, then a summary line, so the UI can show them live."""

    auth_resource = "kernelspecs"

    @tornado.web.authenticated
    @authorized
    async def post(self, name: str):
        entry = await _store(kernelspecs.get_ssh_entry, name, valid=True)
        stream = self.get_query_argument("stream", "0") in ("1", "true")
        masters = self.runtime.masters  # the connections this server's kernels ride on
        if not stream:
            results = await check_many([entry.model], masters=masters)
            checks = [c.to_dict() for c in results[name]]
            ok = all(c["status"] != CheckStatus.FAIL for c in checks)
            return self.finish({"name": name, "ok": ok, "checks": checks})
        self.set_header("Content-Type", "application/x-ndjson")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.ensure_future(
            check_many([entry.model], on_result=lambda _n, c: queue.put_nowait(c), masters=masters)
        )
        task.add_done_callback(lambda _t: queue.put_nowait(None))
        failed = False
        while (check := await queue.get()) is not None:
            failed |= check.status == CheckStatus.FAIL
            self.write(json.dumps({"check": check.to_dict()}) + "\n")
            await self.flush()
        task.result()
        self.finish(json.dumps({"done": True, "name": name, "ok": not failed}) + "\n")
