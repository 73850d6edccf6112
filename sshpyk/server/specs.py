"""/sshpyk/kernels: SSH kernel CRUD and health checks."""

from __future__ import annotations

import asyncio
import json

import tornado
from jupyter_server.auth.decorator import authorized

from .. import kernelspecs
from ..checks import FAIL, check_many
from ..kernelspecs import KernelSpecError
from ..model import InvalidField, validate
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


class KernelsHandler(_SpecsHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        entries = await _store(kernelspecs.list_entries)
        self.finish({"kernels": [e.to_dict() for e in entries]})

    @tornado.web.authenticated
    @authorized
    async def post(self):
        try:
            body = self.json_body()
            validate(body)  # the model's message, before anything touches the disk
            entry = await _store(kernelspecs.write, body)
        except (InvalidField, KernelSpecError) as e:
            return self.fail(e)
        self._refresh_specs()
        self.set_status(201)
        self.set_header("Location", self.request.path.rstrip("/") + "/" + entry.name)
        self.finish(entry.to_dict())


class KernelHandler(_SpecsHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, name: str):
        try:
            entry = await _store(kernelspecs.get_entry, name)
        except KernelSpecError as e:
            return self.fail(e)
        self.finish(entry.to_dict())

    @tornado.web.authenticated
    @authorized
    async def patch(self, name: str):
        try:
            entry = await _store(kernelspecs.update, name, self.json_body())
        except (InvalidField, KernelSpecError) as e:
            return self.fail(e)
        self._refresh_specs()
        self.finish(entry.to_dict())

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str):
        try:
            await _store(kernelspecs.delete, name)
        except KernelSpecError as e:
            return self.fail(e)
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
        try:
            entry = await _store(kernelspecs.get_ssh_entry, name, valid=True)
        except KernelSpecError as e:
            return self.fail(e)
        stream = self.get_query_argument("stream", "0") in ("1", "true")
        if not stream:
            results = await check_many([entry.model])
            checks = [c.to_dict() for c in results[name]]
            return self.finish(
                {"name": name, "ok": all(c["status"] != FAIL for c in checks), "checks": checks}
            )
        self.set_header("Content-Type", "application/x-ndjson")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.ensure_future(
            check_many([entry.model], on_result=lambda _n, c: queue.put_nowait(c))
        )
        task.add_done_callback(lambda _t: queue.put_nowait(None))
        failed = False
        while (check := await queue.get()) is not None:
            failed |= check.status == FAIL
            self.write(json.dumps({"check": check.to_dict()}) + "\n")
            await self.flush()
        task.result()
        self.finish(json.dumps({"done": True, "name": name, "ok": not failed}) + "\n")
