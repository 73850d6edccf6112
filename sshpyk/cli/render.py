"""What the CLI prints: kernelspec blocks, check lines, the ``ps`` table, JSON documents and
the progress line — from given data, never by asking a host."""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from typing import Any

from ..checks import Check
from ..kernelspecs import KernelEntry
from ..model import format_mount
from ..slurm_options import sbatch_flags
from ..states import CheckStatus

OK, WARN, FAIL, SKIPPED = CheckStatus.OK, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.SKIPPED

# how bad a check's status is, least first: a value shows the mark of its worst check
SEVERITY = [OK, SKIPPED, WARN, FAIL]


class Style:
    """Colours and marks, on a terminal only (``enabled``)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def _colour(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def mark(self, status: str) -> str:
        return {
            OK: self._colour("32", "(v)"),
            WARN: self._colour("33", "(!)"),
            FAIL: self._colour("31", "(x)"),
            SKIPPED: self._colour("90", "(-)"),
        }.get(status, "")

    def head(self, text: str) -> str:
        return self._colour("1", text)


def fields(rows: list[tuple[str, str]]) -> str:
    """``Label:  value`` lines, the values aligned."""
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label + ':':<{width}}{value}".rstrip() for label, value in rows)


def local_rows(entry: KernelEntry) -> list[tuple[str, str]]:
    raw = entry.raw or {}
    if entry.error:
        return [("Name", entry.name), ("Resource Dir", entry.resource_dir), ("Error", entry.error)]
    return [
        ("Name", entry.name),
        ("Display Name", raw.get("display_name", "")),
        ("Resource Dir", entry.resource_dir),
        ("Command", shlex.join(raw.get("argv") or [])),
        ("Language", raw.get("language", "")),
        ("Interrupt Mode", raw.get("interrupt_mode", "signal")),
    ]


def ssh_rows(entry: KernelEntry, checks: list[Check] | None, style: Style) -> list[tuple[str, str]]:
    """An SSH kernelspec's rows; with ``checks``, each value marked by the checks about it
    (and the hint of the worst one that failed or warned)."""
    raw, model = entry.raw or {}, entry.model
    if model is None:
        return [
            ("Name", entry.name),
            ("Display Name", raw.get("display_name", "")),
            ("Resource Dir", entry.resource_dir),
            ("Error", f"{style.mark(FAIL)} {entry.error}"),
        ]
    by_id = {c.id: c for c in checks or []}

    def marked(text: Any, *check_ids: str) -> str:
        """``text`` followed by the mark of the worst of these checks, if any ran."""
        about = [by_id[i] for i in check_ids if i in by_id]
        if not about:
            return str(text)
        worst = max(about, key=lambda c: SEVERITY.index(c.status))
        hint = f"  {worst.hint}" if worst.status in (FAIL, WARN) and worst.hint else ""
        return f"{text} {style.mark(worst.status)}{hint}"

    remote = by_id.get("remote_kernel")
    remote_data = (remote.data or {}) if remote and remote.status == OK else {}
    mounts = model.get("mount_local_on_remote") or []
    system = by_id["remote_system"].value if "remote_system" in by_id else ""
    rows = [
        ("Name", model["kernel_name"]),
        ("Display Name", model["display_name"]),
        ("Resource Dir", entry.resource_dir),
        ("Command", "(sshpyk-provisioner)"),
        ("Language", model["language"]),
        ("Interrupt Mode", model["interrupt_mode"]),
        (
            "SSH Host Alias",
            marked(model["ssh_host_alias"] + _alias_detail(by_id), "host_alias", "connection"),
        ),
        ("SSH Path", marked(model.get("ssh") or "ssh", "ssh_client")),
        ("SSH Config", marked(model.get("ssh_config") or "(default)", "ssh_config")),
        ("SSH Connection", "your own master" if model.get("ssh_master") == "user" else "sshpyk's"),
        ("Remote System", marked(system, "remote_system")),
        ("Remote Interrupt Mode", marked(remote_data.get("interrupt_mode", ""), "remote_kernel")),
        (
            "Remote Python Prefix",
            marked(model["remote_python_prefix"], "remote_python", "jupyter_client"),
        ),
        ("Remote Kernel Name", marked(model["remote_kernel_name"], "remote_kernel")),
        ("Launch Timeout", str(model["launch_timeout"])),
        ("Shutdown Timeout", str(model["shutdown_timeout"])),
        ("Lease Timeout", str(model["lease_timeout"])),
        ("Lost Timeout", str(model["lost_timeout"])),
        ("Channels", model.get("channels") or "forward"),
        ("Transport", marked(model["transport"], "port_forwarding")),
        (
            "Remote Command",
            marked(remote.value if remote and remote.status == OK else "", "remote_kernel"),
        ),
        ("SSHFS Mounting", marked("yes", "sshfs") if mounts else "no"),
    ]
    rows += [(f"  Mount {i + 1}", format_mount(mount)) for i, mount in enumerate(mounts)]
    rows += container_rows(model.get("container"))
    rows += slurm_rows(model.get("slurm"))
    if not checks:  # what only a host can tell
        rows = [
            (label, value)
            for label, value in rows
            if label not in ("Remote System", "Remote Interrupt Mode", "Remote Command")
        ]
    return rows


def container_rows(container: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The image the kernel runs in, when it runs in a container."""
    if container is None:
        return []
    return [
        ("Container", container["runtime"]),
        ("  Image", container["image"]),
        ("  Python", container["python"]),  # every member is there (model._filled)
        ("  Runtime Options", shlex.join(container["options"]) or "none"),
    ]


def slurm_rows(slurm: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Where the kernel runs when it runs under Slurm: a summary, then the sbatch flags."""
    if slurm is None:
        return []
    said = [
        f"{label} {slurm[key]}"
        for key, label in (("partition", "partition"), ("time", "time limit"))
        if slurm.get(key)
    ]
    summary = "a compute node, in a Slurm job" + (f" ({', '.join(said)})" if said else "")
    warning = slurm.get("walltime_warning")
    return [
        ("Runs On", summary),
        ("  sbatch Flags", shlex.join(sbatch_flags(slurm)) or "(the cluster's defaults)"),
        ("  Time Warning", f"{warning} min before the limit" if warning else "none"),
    ]


def _alias_detail(by_id: dict[str, Check]) -> str:
    check = by_id.get("host_alias")
    return f" ({check.value})" if check and check.value else ""


def local_block(entry: KernelEntry, style: Style) -> str:
    return style.head("----- Local Kernel ------") + "\n" + fields(local_rows(entry))


def ssh_block(entry: KernelEntry, checks: list[Check] | None, style: Style) -> str:
    return style.head("------ SSH Kernel -------") + "\n" + fields(ssh_rows(entry, checks, style))


def entry_json(entry: KernelEntry, checks: list[Check] | None) -> dict[str, Any]:
    out = entry.to_dict()
    if checks is not None:
        out["checks"] = [c.to_dict() for c in checks]
    return out


def check_line(check: Check, style: Style) -> str:
    """One check as ``sshpyk check`` prints it as soon as it is known."""
    hint = f"\n      {check.hint}" if check.hint and check.status != OK else ""
    return f"{style.mark(check.status)} {check.title}: {check.value}{hint}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# ---- ps ------------------------------------------------------------------------------------------

PS_HEADER = ("KERNEL", "KERNELSPEC", "HOST", "STARTED", "SERVER", "ON THE HOST")


def on_the_host(kernel: dict[str, Any]) -> str:
    """What became of a running kernel (one ``orphans.probe`` result) on its host."""
    if not kernel["reachable"]:
        return "unreachable"
    if kernel.get("slurm_job") and kernel.get("on_host"):
        # its run dir (and lease) are in the cluster's shared $HOME, its processes on a node
        where = f"Slurm job {kernel['slurm_job']} on {kernel['on_host']}"
        if kernel["attached"]:
            return f"{where}, attached"
        if kernel["lease_age"] is not None:
            return f"{where}, detached for {kernel['lease_age']:.0f}s"
        return where
    if kernel.get("elsewhere"):
        # a home directory shared by several hosts: this connection reached another one
        return f"on another host ({kernel['on_host']})"
    if not kernel["alive"]:
        return "ended"
    if kernel["attached"]:
        return "running, attached"
    return f"running, detached for {kernel['lease_age']:.0f}s"


def ps_table(found: list[dict[str, Any]]) -> list[str]:
    """The lines of ``sshpyk ps`` for these kernels (none when there are none)."""
    rows = [PS_HEADER]
    for k in found:
        server = f"gone (pid {k['server_pid']})" if k["orphan"] else f"pid {k['server_pid']}"
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(k["started_at"]))
        rows.append(
            (k["kernel_id"], k["kernelspec"], k["host_alias"], started, server, on_the_host(k))
        )
    if len(rows) == 1:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(PS_HEADER))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


# ---- progress ------------------------------------------------------------------------------------


class Progress:
    """One refreshed status line on stderr for work that takes over a second, e.g.
    "checking 2 hosts… (gpu-box, login1) 3 s".  Only on a terminal: pipes and CI logs get
    no carriage returns or escape codes."""

    DELAY, EVERY = 1.0, 0.2

    def __init__(self, text, stream=None):
        self.text = text  # () -> str | None: what is being waited for now (None: nothing)
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.shown = False
        self.t0 = time.monotonic()

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False

    def draw(self) -> None:
        took = time.monotonic() - self.t0
        text = self.text()
        if not self.enabled or took < self.DELAY or not text:
            return
        self.stream.write(f"\r\033[K{text} {took:.0f} s")
        self.stream.flush()
        self.shown = True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.EVERY)
            self.draw()


async def with_progress(coro, text: str):
    """``coro``'s result, with ``text`` as the progress line while it takes over a second."""
    progress = Progress(lambda: text)
    ticker = asyncio.ensure_future(progress.run())
    try:
        return await coro
    finally:
        ticker.cancel()
        progress.clear()
