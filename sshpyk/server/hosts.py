"""/sshpyk/hosts: what the user's ssh config offers, and what a host's environment offers."""

from __future__ import annotations

import asyncio

import tornado
from jupyter_server.auth.decorator import authorized

from ..checks import Checker, target_of
from ..errors import SSHPykError
from ..model import CONFIG_FIELDS, InvalidField, validate
from ..sshconfig import config_hosts, default_config, resolve
from .base import SSHPykHandler


def _target_args(handler: SSHPykHandler, alias: str | None = None) -> dict:
    """ssh_config / ssh / remote_python_prefix from the query, validated by the model."""
    data = {
        k: handler.get_query_argument(k)
        for k in ("ssh_config", "ssh", "remote_python_prefix")
        if handler.get_query_argument(k, None) not in (None, "")
    }
    if alias is not None:
        data["ssh_host_alias"] = alias
    only = tuple(k for k in CONFIG_FIELDS if k in data)
    return validate(data, only=only) if only else {}


class HostsHandler(SSHPykHandler):
    auth_resource = "kernelspecs"

    @tornado.web.authenticated
    @authorized
    async def get(self):
        try:
            args = _target_args(self)
        except InvalidField as e:
            return self.fail(e)
        config = args.get("ssh_config")
        aliases = await asyncio.get_running_loop().run_in_executor(None, config_hosts, config)
        hosts = await asyncio.gather(
            *(resolve(a, args.get("ssh") or "ssh", config) for a in aliases)
        )
        self.finish({"ssh_config": config or str(default_config()), "hosts": list(hosts)})


class HostKernelspecsHandler(SSHPykHandler):
    auth_resource = "kernelspecs"

    @tornado.web.authenticated
    @authorized
    async def get(self, alias: str):
        try:
            args = _target_args(self, alias)
            if "remote_python_prefix" not in args:
                raise InvalidField("remote_python_prefix", "is required")
        except InvalidField as e:
            return self.fail(e)
        model = {
            "ssh_host_alias": alias,
            "ssh": args.get("ssh"),
            "ssh_config": args.get("ssh_config"),
        }
        checker = Checker()
        target = target_of(model)
        try:
            await checker.connect(target)
            info = await checker.inspect(target, args["remote_python_prefix"], None)
        except SSHPykError as e:
            return self.fail(e)
        if "error" in info:
            return self.error(
                400,
                f"{args['remote_python_prefix']} on {alias}: {info['error'].replace('_', ' ')}",
                "remote_python_prefix",
            )
        if not info.get("jupyter_client"):
            return self.error(
                400,
                f"jupyter_client is not installed in {args['remote_python_prefix']} on {alias}",
                "remote_python_prefix",
            )
        specs = [{"name": n, **s} for n, s in sorted((info.get("kernelspecs") or {}).items())]
        self.finish(
            {
                "alias": alias,
                "remote_python_prefix": args["remote_python_prefix"],
                "python": info.get("python"),
                "system": info.get("system"),
                "kernelspecs": specs,
            }
        )
