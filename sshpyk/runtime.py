"""``Runtime``: what one Jupyter server's sshpyk holds while it runs.

One object per server, created by the server extension and kept in
``web_app.settings[SETTINGS_KEY]``; handlers take it from there and provisioners find it
through their parents (kernel manager → multi-kernel manager → server app).  Code that runs
without a Jupyter server (the CLI, a bare ``KernelManager``) shares the process default.
Nothing else keeps process-wide state about kernels, mounts or connections.
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # no import at run time: every other module may import this one
    from .registry import Record

SETTINGS_KEY = "sshpyk_runtime"
ENDED_KEPT = 900.0  # seconds the status API still lists a kernel whose allocation ended


class Runtime:
    def __init__(self) -> None:
        # Every SSH kernel provisioner by kernel id, launching ones included: the status API
        # lists kernels before the kernel manager knows them (it adds them once started).
        self.kernels: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
        # SSHFS mounts shared by the kernels of this server, by (host key, remote path):
        # see ``mounts.Mounts``.
        self.mounts: dict[tuple[str, str], Any] = {}
        # The ssh ControlMasters of this server by target key and shard (see
        # ``transport.Master``): every kernel, mount and check on a host rides on them.
        self.masters: dict[str, Any] = {}
        # Kernel ids a request of this server is re-attaching or shutting down right now
        # (``server/orphans.py``: one such request per kernel at a time).
        self.orphan_requests: set[str] = set()
        # Interactive logins (``sshpyk.login.logins.Logins``): set by the server extension,
        # whose front end shows a host's questions; None elsewhere (the CLI's own process,
        # a bare KernelManager): a host that wants a login then fails fast with the hint.
        self.logins: Any = None
        self._attach: dict[str, Record] = {}
        # Kernels whose allocation ended (a Slurm job's time limit): their last status, kept
        # a while after the kernel manager dropped them, so Lab can still say why.
        self.ended: dict[str, tuple[float, dict[str, Any]]] = {}

    def remember_ended(self, kernel_id: str, status: dict[str, Any]) -> None:
        now = time.monotonic()
        self.ended = {k: v for k, v in self.ended.items() if now - v[0] < ENDED_KEPT}
        self.ended[kernel_id] = (now, status)

    def recently_ended(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        return {k: st for k, (t, st) in self.ended.items() if now - t < ENDED_KEPT}

    # ---- re-attach mailbox ---------------------------------------------------------------
    # Why a mailbox and not an argument: jupyter_client starts a kernel with
    # ``km.start_kernel(**kw)`` and *remembers those arguments*, replaying them on every
    # restart (``KernelManager._launch_args``).  An "attach to this remote kernel" argument
    # would be replayed too, and a restart would try to take up the kernel it just ended.
    # So the re-attach handler posts the record here right before it asks the kernel
    # manager to start that kernel id, and the provisioner takes it out exactly once.

    def expect_attach(self, kernel_id: str, record: Record) -> None:
        self._attach[kernel_id] = record

    def attach_pending(self, kernel_id: str) -> Record | None:
        """The record a start of ``kernel_id`` will take up (read before launch: the key)."""
        return self._attach.get(kernel_id)

    def take_attach(self, kernel_id: str) -> Record | None:
        """The record to take up instead of launching; gone once taken."""
        return self._attach.pop(kernel_id, None)

    def cancel_attach(self, kernel_id: str) -> None:
        self._attach.pop(kernel_id, None)


_DEFAULT: Runtime | None = None


def default_runtime() -> Runtime:
    """The runtime of code running without a Jupyter server (CLI, bare kernel managers)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Runtime()
    return _DEFAULT


def runtime_of(obj: Any) -> Runtime:
    """The runtime of the server ``obj`` belongs to, found through its ``parent`` chain (a
    provisioner's parent is its kernel manager, whose parent is the server's multi-kernel
    manager, whose parent is the server app); the process default without a server."""
    seen: set[int] = set()
    while obj is not None and id(obj) not in seen:
        seen.add(id(obj))
        web_app = getattr(obj, "web_app", None)
        settings = getattr(web_app, "settings", None)
        if isinstance(settings, dict) and isinstance(settings.get(SETTINGS_KEY), Runtime):
            return settings[SETTINGS_KEY]
        obj = getattr(obj, "parent", None)
    return default_runtime()
