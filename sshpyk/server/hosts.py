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

from .. import remote_env
from ..errors import Refused, remote_failure
from ..model import InvalidField, validate
from ..sshconfig import config_hosts, default_config, resolve_many
from ..transport import Master, Target
from .base import SSHPykHandler

# what a request that names a config or a program is told
_NOT_IN_QUERY = "is not taken from a query string: POST it in the body"
_NOT_FROM_REQUEST = "the ssh client comes from the server's configuration (SSHPykSettings.ssh)"


def _body(handler: SSHPykHandler, fields: tuple[str, ...]) -> dict[str, Any]:
    """The JSON body restricted to ``fields``, each validated by the model."""
    return body_fields(handler.json_body(), fields)


def body_fields(data: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """A request body restricted to ``fields``, each validated by the model; the ssh client
    is never the request's."""
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
        # InvalidField (400) for the default config too, when it is not a safe file
        aliases = await asyncio.get_running_loop().run_in_executor(None, config_hosts, config)
        hosts = await resolve_many(aliases, self.sshpyk_settings.ssh, config)
        self.finish({"ssh_config": config or str(default_config()), "hosts": hosts})

    @tornado.web.authenticated
    @authorized
    async def get(self):
        """The hosts of the default ssh config (``~/.ssh/config``)."""
        _refuse_query(self, "ssh_config", "ssh")
        await self._answer(None)

    @tornado.web.authenticated
    @authorized
    async def post(self):
        """The hosts of ``{"ssh_config": FILE}`` (or of the default config)."""
        await self._answer(_body(self, ("ssh_config",)).get("ssh_config"))


class HostKernelspecsHandler(SSHPykHandler):
    auth_resource = "kernelspecs"

    @tornado.web.authenticated
    @authorized
    async def post(self, alias: str):
        """The kernelspecs of ``{"remote_python_prefix": P, "ssh_config"?: FILE}`` on
        ``alias``: connects (a master that persists a minute) and runs P's python there."""
        args = _body(self, ("ssh_config", "remote_python_prefix"))
        validate({"ssh_host_alias": alias}, only=("ssh_host_alias",))
        prefix = args["remote_python_prefix"]
        config = {
            "ssh_host_alias": alias,
            "ssh": self.sshpyk_settings.ssh,
            "ssh_config": args.get("ssh_config"),
        }
        master = Master.for_target(Target.from_config(config), pool=self.runtime.masters)
        await master.ensure(remote_env.TIMEOUT)  # SSHPykError (502): the host cannot be reached
        info = await remote_env.inspect(master, prefix)
        if "error" in info:  # no such prefix, or no python in it
            raise Refused(
                remote_failure(info, alias=alias, prefix=prefix), field="remote_python_prefix"
            )
        if not info.get("jupyter_client"):
            raise Refused(
                f"jupyter_client is not installed in {prefix} on {alias}",
                field="remote_python_prefix",
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
