"""``SSHKernelProvisioner``: a remote kernelspec, usable as if it were local.

The jupyter_client adapter only: it turns the kernelspec's config into a ``RemoteKernel``
(``remote_kernel.py``) over a channel path (``channels.py``), a launch backend
(``backend.py``) and the host's shared ssh master, answers jupyter_client's calls from it,
and keeps the kernel's record in the registry so that a later Jupyter server can take it up
again.  See the README's "How it works" for the whole picture.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase

from .. import registry
from ..errors import SSHPykError
from ..local_platform import check_platform
from ..model import InvalidField, SSHKernelConfig
from ..mounts import Mounts
from ..remote_cwd import cwd_params
from ..runtime import default_runtime, runtime_of
from ..transport import Master, Target
from .backend import backend_for
from .channels import channel_path_for
from .remote_kernel import RemoteKernel

# Variables of the Jupyter server worth passing to the remote kernel; the rest of the local
# environment (paths, tokens, secrets) stays local.
FORWARDED_ENV = ("JPY_SESSION_NAME",)


class SSHKernelProvisioner(KernelProvisionerBase):
    """Starts the kernelspec ``remote_kernel_name`` of ``remote_python_prefix`` on the host
    ``ssh_host_alias`` of the user's ssh config; see ``sshpyk.model`` for every field."""

    def __init__(self, **kwargs: Any):
        # the factory passes the kernelspec's config as keyword arguments next to its own
        own = {"kernel_id", "kernel_spec", "parent", "config", "log"}
        config = {k: kwargs.pop(k) for k in list(kwargs) if k not in own}
        super().__init__(**kwargs)
        check_platform()  # native Windows: refused here, at the kernel's start, naming WSL2
        try:
            self.cfg = SSHKernelConfig.from_dict(config)
        except InvalidField as e:
            name = getattr(self.kernel_spec, "display_name", "?")
            raise SSHPykError(f"invalid SSH kernelspec {name!r}: {e}", kind="invalid_spec") from e
        self.runtime = runtime_of(self)
        master = Master.for_target(Target.from_config(self.cfg), pool=self.runtime.masters)
        self.kernel = RemoteKernel(
            self.cfg,
            str(self.kernel_id),
            master,
            channel_path_for(self.cfg, self.log),
            Mounts(
                master,
                self.cfg.remote_python_prefix,
                self.cfg.remote_sshfs,
                self.cfg.mount_local_on_remote,
                lease_timeout=self.cfg.lease_timeout,
                shared=self.runtime.mounts,
            ),
            self.log,
            on_connected=self._connected,
            backend=backend_for(self.cfg, str(self.kernel_id)),
            # inside a Jupyter server (Lab): a host that wants a login asks there
            login=self.runtime.logins.wait if self.runtime.logins is not None else None,
        )
        # Set by cleanup(restart=True), which jupyter_client calls right before it launches
        # the same kernel again: the next launch is a restart (said, not guessed).
        self._restarting = False
        self.runtime.kernels[str(self.kernel_id)] = self

    # ---- what the status API and the tests read --------------------------------------------------
    @property
    def master(self) -> Master:
        return self.kernel.master

    @property
    def mounts(self) -> Mounts:
        return self.kernel.mounts

    @property
    def remote(self) -> dict[str, Any] | None:
        return self.kernel.remote

    @property
    def launches(self) -> int:
        return self.kernel.launches

    @property
    def forwards(self) -> list[str]:
        return self.kernel.channels.info().get("forwards") or []

    @property
    def local_ports(self) -> list[int] | None:
        return self.kernel.channels.local_ports

    @property
    def state(self):
        return self.kernel.watchdog.state

    @property
    def step(self) -> str:
        return self.kernel.watchdog.step

    @property
    def since(self) -> float:
        return self.kernel.watchdog.since

    def status(self) -> dict[str, Any]:
        return self.kernel.status()

    async def measure_rtt(self, timeout: float = 2.0) -> float | None:
        return await self.kernel.measure_rtt(timeout)

    def cancel_launch(self) -> bool:
        """Lab's Cancel on a launch in progress (a queued Slurm job): False when none is."""
        return self.kernel.cancel_launch()

    # ---- KernelProvisionerBase: state ------------------------------------------------------------
    @property
    def has_process(self) -> bool:
        return self.kernel.remote is not None

    async def poll(self) -> int | None:
        code = await self.kernel.polled()
        if code is not None and self.kernel.allocation_ended:
            self._allocation_ended()
        return code

    def _allocation_ended(self) -> None:
        """The kernel's allocation ended (a Slurm job's time limit, a node failure): an
        automatic restart could only fail (or take a new allocation behind the user's
        back), so jupyter_client's restarter reports the kernel dead at once instead of
        "restarting", and the status API keeps saying why after the kernel is dropped."""
        restarter = getattr(self.parent, "_restarter", None)  # jupyter_client's, if any
        if restarter is not None and getattr(restarter, "restart_limit", 0) != 0:
            restarter.restart_limit = 0
            self.log.warning("sshpyk: %s", self.kernel.allocation_ended)
        self.runtime.remember_ended(
            str(self.kernel_id),
            {"kernelspec": getattr(self.parent, "kernel_name", None), **self.status()},
        )

    async def wait(self) -> int | None:
        return await self.kernel.wait()

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return float(self.cfg.shutdown_timeout)

    async def shutdown_requested(self, restart: bool = False) -> None:
        self.kernel.shutdown_asked = True
        if restart:  # its launcher's session opens while the old kernel shuts down
            self.kernel.warm_launcher()

    async def send_signal(self, signum: int) -> None:
        await self.kernel.signal(signum)

    async def kill(self, restart: bool = False) -> None:
        await self.kernel.signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.kernel.signal(signal.SIGTERM)

    # ---- launch ----------------------------------------------------------------------------------
    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        rec = self.runtime.attach_pending(str(self.kernel_id))
        if rec is not None:
            # a kernel that runs already: its clients must sign with its key
            self.parent.session.key = rec.key.encode()
            self.parent.session.signature_scheme = rec.signature_scheme
        kwargs = await super().pre_launch(**kwargs)
        kwargs["cmd"] = []  # nothing runs locally
        return kwargs

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        restart, self._restarting = self._restarting, False
        rec = self.runtime.take_attach(str(self.kernel_id))
        params = None if rec else self._launch_params(kwargs.get("env") or {}, kwargs.get("cwd"))
        await self.kernel.start(params, rec, restart=restart)
        self._set_connection_info()
        if rec is not None:
            # in a Jupyter server, its activity watcher subscribes before any client
            self.kernel.channels.reattached(0 if self.runtime is default_runtime() else 1)
            # the dead server's connection file has the same ports and key: jupyter_client
            # would take it for its own and never load ours into the kernel manager
            with contextlib.suppress(FileNotFoundError, TypeError):
                os.remove(self.parent.connection_file)
        return self.connection_info

    def _launch_params(self, env: dict[str, str], cwd: str | None = None) -> dict[str, Any]:
        """What the remote launcher is told (HMAC key included: it travels over stdin only).
        ``cwd``: the notebook's directory, as jupyter_server gives it (see remote_cwd.py)."""
        km = self.parent
        return {
            **cwd_params(cwd, self.cfg.mount_local_on_remote, self.cfg.remote_cwd),
            "kernel_name": self.cfg.remote_kernel_name,
            "key": km.session.key.decode(),
            "signature_scheme": km.session.signature_scheme,
            "transport": self.cfg.transport,
            "channels": self.cfg.channels,
            "journal_limit": self.cfg.journal_limit_mb << 20,
            "launch_timeout": self.cfg.launch_timeout,
            "lease_timeout": self.cfg.lease_timeout,
            "kernel_uuid": str(self.kernel_id),
            "kernelspec": km.kernel_name,
            "env": {**self.kernel_spec.env, **{k: env[k] for k in FORWARDED_ENV if k in env}},
            # the image the kernel runs in, and what is bound into it besides sshpyk's own
            # directories (remote/container.py)
            "container": self.cfg.container,
            "binds": [m["remote_path"] for m in self.cfg.mount_local_on_remote or []],
        }

    def _set_connection_info(self) -> None:
        """What clients connect to: the channel path's local ports, the kernel's key."""
        km = self.parent
        self.connection_info = {
            **self.kernel.channels.ports(),
            "ip": "127.0.0.1",
            "transport": "tcp",
            "key": km.session.key,
            "signature_scheme": km.session.signature_scheme,
            "kernel_name": km.kernel_name,
        }

    def _connected(self) -> None:
        """Launched, taken up or reconnected: the record a later server re-attaches from."""
        km = self.parent
        try:
            registry.save(
                registry.Record(
                    kernel_id=str(self.kernel_id),
                    kernelspec=km.kernel_name,
                    display_name=getattr(self.kernel_spec, "display_name", km.kernel_name),
                    config=dataclasses.asdict(self.cfg),
                    remote=dict(self.kernel.remote or {}),
                    key=km.session.key.decode(),
                    signature_scheme=km.session.signature_scheme,
                    started_at=self.kernel.started_at or time.time(),
                    local_ports=self.kernel.channels.local_ports,
                )
            )
        except (OSError, SSHPykError) as e:  # the kernel runs anyway; re-attach won't
            self.log.warning("sshpyk: could not record kernel %s: %s", self.kernel_id, e)

    # ---- the end ---------------------------------------------------------------------------------
    async def cleanup(self, restart: bool = False) -> None:
        self._restarting = restart
        if restart:
            await self.kernel.stop(restart=True)
            return
        try:
            if self.kernel.exit_confirmed:
                registry.remove(str(self.kernel_id))
            else:
                # Shut down without word from the host (it was unreachable): the kernel may
                # still run there.  Its record stays, as an orphan, so `sshpyk ps`, the
                # sidebar and `sshpyk reap` can finish the job once the host is back (and
                # the lease ends it meanwhile).
                registry.abandon(str(self.kernel_id))
        except (OSError, SSHPykError, TypeError, ValueError) as e:
            # a full disk or a broken record must not keep the mounts and session alive
            self.log.warning("sshpyk: could not update the record of %s: %s", self.kernel_id, e)
        await self.kernel.stop(restart=False)

    # ---- persistence (jupyter_client's own contract) ---------------------------------------------
    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info.update(
            {
                "remote": self.kernel.remote,
                "launches": self.kernel.launches,
                **self.kernel.channels.info(),
            }
        )
        return info

    async def load_provisioner_info(self, provisioner_info: dict) -> None:
        await super().load_provisioner_info(provisioner_info)
        self.kernel.remote = provisioner_info.get("remote")
        self.kernel.channels.load(provisioner_info)
        self.kernel.launches = int(provisioner_info.get("launches") or 0)
