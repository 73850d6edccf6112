"""/sshpyk/hosts: what the user's ssh config offers, and what a host's environment offers.

An ssh config is a program in disguise (``ProxyCommand``, ``Match exec``), so no GET ever
names one: ``GET /sshpyk/hosts`` reads the server user's default config only, and whatever
names a config (or runs a remote python) is a POST — XSRF-checked, and ``write`` on
kernelspecs, since it is the first step of writing one.  The ssh client always comes from
the server's configuration (``SSHPykSettings.ssh``), never from the request.
"""

from __future__ import annotations

import asyncio
from typing import Any

import tornado
from jupyter_server.auth.decorator import authorized

from ..checks import Checker, target_of
from ..errors import SSHPykError
from ..model import InvalidField, validate
from ..sshconfig import config_hosts, default_config, resolve_many
from .base import SSHPykHandler
from .settings import settings_of

# what a request that names a config or a program is told
_NOT_IN_QUERY = "is not taken from a query string: POST it in the body"
_NOT_FROM_REQUEST = "the ssh client comes from the server's configuration (SSHPykSettings.ssh)"


def _body(handler: SSHPykHandler, fields: tuple[str, ...]) -> dict[str, Any]:
    """The JSON body restricted to ``fields``, each validated by the model."""
    data = handler.json_body()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidField("body", "must be a JSON object")
    if "ssh" in data:
        raise InvalidField("ssh", _NOT_FROM_REQUEST)
    data = {k: v for k, v in data.items() if v not in (None, "")}
    return validate(data, only=fields)


def _refuse_query(handler: SSHPykHandler, *names: str) -> None:
    for name in names:
        if handler.get_query_argument(name, None) is not None:
            raise InvalidField(name, _NOT_IN_QUERY if name != "ssh" else _NOT_FROM_REQUEST)


class HostsHandler(SSHPykHandler):
    auth_resource = "kernelspecs"

    async def _answer(self, config: str | None) -> None:
        try:
            aliases = await asyncio.get_running_loop().run_in_executor(None, config_hosts, config)
        except InvalidField as e:  # the default config, when it is not a safe file
            return self.fail(e)
        hosts = await resolve_many(aliases, settings_of(self.settings).ssh, config)
        self.finish({"ssh_config": config or str(default_config()), "hosts": hosts})

    @tornado.web.authenticated
    @authorized
    async def get(self):
        """The hosts of the default ssh config (``~/.ssh/config``)."""
        try:
            _refuse_query(self, "ssh_config", "ssh")
        except InvalidField as e:
            return self.fail(e)
        await self._answer(None)

    @tornado.web.authenticated
    @authorized
    async def post(self):
        """The hosts of ``{"ssh_config": FILE}`` (or of the default config)."""
        try:
            args = _body(self, ("ssh_config",))
        except InvalidField as e:
            return self.fail(e)
        await self._answer(args.get("ssh_config"))


class HostKernelspecsHandler(SSHPykHandler):
    auth_resource = "kernelspecs"

    @tornado.web.authenticated
    @authorized
    async def post(self, alias: str):
        """The kernelspecs of ``{"remote_python_prefix": P, "ssh_config"?: FILE}`` on
        ``alias``: connects (a master that persists a minute) and runs P's python there."""
        try:
            args = _body(self, ("ssh_config", "remote_python_prefix"))
            validate({"ssh_host_alias": alias}, only=("ssh_host_alias",))
        except InvalidField as e:
            return self.fail(e)
        prefix = args["remote_python_prefix"]
        model = {
            "ssh_host_alias": alias,
            "ssh": settings_of(self.settings).ssh,
            "ssh_config": args.get("ssh_config"),
        }
        checker = Checker()
        target = target_of(model)
        try:
            await checker.connect(target)
            info = await checker.inspect(target, prefix, None)
        except SSHPykError as e:
            return self.fail(e)
        if "error" in info:
            return self.error(
                400,
                f"{prefix} on {alias}: {info['error'].replace('_', ' ')}",
                "remote_python_prefix",
            )
        if not info.get("jupyter_client"):
            return self.error(
                400,
                f"jupyter_client is not installed in {prefix} on {alias}",
                "remote_python_prefix",
            )
        specs = [{"name": n, **s} for n, s in sorted((info.get("kernelspecs") or {}).items())]
        self.finish(
            {
                "alias": alias,
                "remote_python_prefix": prefix,
                "python": info.get("python"),
                "system": info.get("system"),
                "kernelspecs": specs,
            }
        )
