"""Reading and writing SSH kernelspecs on disk (the user's Jupyter data dir).

Writes are atomic: a complete kernelspec directory is built beside the target and renamed
into place, so a crash never leaves half a kernel.json.  One broken kernelspec never stops
the others from being listed: its entry carries the error instead of a model.

A refused operation raises one of the refusals of ``sshpyk.errors`` (``KernelSpecNotFound``,
``NotAnSSHKernel``, ``KernelSpecConflict``, ``KernelSpecError``; ``model.InvalidField`` for a
bad value): the REST API and the CLI each turn them into a status or an exit code, in one
place of their own.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.paths import jupyter_data_dir

from .errors import KernelSpecConflict, KernelSpecError, KernelSpecNotFound, NotAnSSHKernel
from .model import (
    CONFIG_FIELDS,
    PROVISIONER_NAME,
    SPEC_FIELDS,
    InvalidField,
    SSHKernelConfig,
    schema,
    validate,
)

LOGOS = ("logo-svg.svg", "logo-64x64.png", "logo-32x32.png")
# Clients that ignore kernel provisioners (jupyter_client < 7) would run argv: tell them why
# it cannot work instead of starting anything locally.
LEGACY_ARGV = [
    sys.executable,
    "-c",
    "import sys; sys.exit('sshpyk: this SSH kernel needs a Jupyter client with kernel "
    "provisioner support (jupyter_client >= 7)')",
    "{connection_file}",
]


@dataclass
class KernelEntry:
    name: str
    resource_dir: str
    raw: dict[str, Any] | None  # kernel.json as read, None when unreadable
    is_ssh: bool
    model: dict[str, Any] | None = None  # the validated SSH model
    error: str | None = None
    error_field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of an entry, shared by the CLI's --json and the REST API."""
        out: dict[str, Any] = {
            "name": self.name,
            "resource_dir": self.resource_dir,
            "ssh": self.is_ssh,
        }
        if self.is_ssh and self.model is not None:
            out["config"] = self.model
        elif self.raw is not None:
            out.update(
                display_name=self.raw.get("display_name"),
                language=self.raw.get("language"),
                argv=self.raw.get("argv"),
                interrupt_mode=self.raw.get("interrupt_mode", "signal"),
            )
        if self.error:
            out["error"] = {"message": self.error, "field": self.error_field}
        return out


def kernels_dir() -> Path:
    return Path(jupyter_data_dir()) / "kernels"


def _is_ssh(raw: dict[str, Any]) -> bool:
    prov = (raw.get("metadata") or {}).get("kernel_provisioner") or {}
    return isinstance(prov, dict) and prov.get("provisioner_name") == PROVISIONER_NAME


def model_from_kernel_json(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The SSH model of a kernel.json (raises InvalidField naming what is wrong)."""
    config = raw["metadata"]["kernel_provisioner"].get("config") or {}
    if not isinstance(config, dict):
        raise InvalidField("config", "must be an object")
    data = {
        "kernel_name": name,
        "display_name": raw.get("display_name"),
        "language": raw.get("language"),
        "interrupt_mode": raw.get("interrupt_mode", "message"),
        "env": raw.get("env") or {},
        **config,
    }
    return validate(data)


def kernel_json_from_model(model: dict[str, Any]) -> dict[str, Any]:
    config = SSHKernelConfig(**{k: model[k] for k in CONFIG_FIELDS}).to_dict()
    return {
        "argv": LEGACY_ARGV,
        "display_name": model["display_name"],
        "language": model["language"],
        "interrupt_mode": model["interrupt_mode"],
        **({"env": model["env"]} if model.get("env") else {}),
        "metadata": {
            "kernel_provisioner": {"provisioner_name": PROVISIONER_NAME, "config": config}
        },
    }


def _read_entry(name: str, resource_dir: str) -> KernelEntry:
    path = Path(resource_dir) / "kernel.json"
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        return KernelEntry(name, resource_dir, None, False, error=f"unreadable {path}: {e}")
    entry = KernelEntry(name, resource_dir, raw, _is_ssh(raw))
    if entry.is_ssh:
        try:
            entry.model = model_from_kernel_json(name, raw)
        except InvalidField as e:
            entry.error, entry.error_field = str(e), e.field
    return entry


def list_entries() -> list[KernelEntry]:
    specs = KernelSpecManager().find_kernel_specs()
    return [_read_entry(n, d) for n, d in sorted(specs.items())]


def get_entry(name: str) -> KernelEntry:
    specs = KernelSpecManager().find_kernel_specs()
    if name not in specs:
        raise KernelSpecNotFound(f"no kernelspec named {name!r}", field="kernel_name")
    return _read_entry(name, specs[name])


def get_ssh_entry(name: str, *, valid: bool = False) -> KernelEntry:
    """The entry of an SSH kernel; a local one is refused (``NotAnSSHKernel``), an invalid
    one too if ``valid`` (``KernelSpecError`` naming the bad field)."""
    entry = get_entry(name)
    if not entry.is_ssh:
        raise NotAnSSHKernel(
            f"{name!r} is a local kernel, not an SSH kernel; sshpyk only manages SSH kernels",
            field="kernel_name",
        )
    if valid and entry.model is None:
        raise KernelSpecError(f"{name!r} is invalid: {entry.error}", field=entry.error_field)
    return entry


def _writable_target(name: str) -> Path:
    target = kernels_dir() / name
    specs = KernelSpecManager().find_kernel_specs()
    if name in specs and Path(specs[name]).resolve() != target.resolve():
        raise KernelSpecConflict(
            f"a kernelspec {name!r} already exists in {specs[name]}, outside your data dir",
            field="kernel_name",
        )
    return target


def write(model: dict[str, Any], *, replace: bool = False) -> KernelEntry:
    """Validate and write an SSH kernelspec atomically; returns what is now on disk."""
    model = validate(model)
    name = model["kernel_name"]
    target = _writable_target(name)
    if target.exists():
        existing = _read_entry(name, str(target))
        if not existing.is_ssh and existing.raw is not None:
            raise KernelSpecConflict(
                f"{name!r} is a local kernel, not an SSH kernel; refusing to overwrite it",
                field="kernel_name",
            )
        if not replace:
            raise KernelSpecConflict(
                f"an SSH kernel named {name!r} already exists", field="kernel_name"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        (tmp / "kernel.json").write_text(json.dumps(kernel_json_from_model(model), indent=1) + "\n")
        for logo in LOGOS:
            (tmp / logo).write_bytes(files("sshpyk.resources").joinpath(logo).read_bytes())
        os.chmod(tmp, 0o755)  # noqa: S103 - a kernelspec dir is readable like any other
        if target.exists():
            old = target.with_name(f".{name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _read_entry(name, str(target))


def update(name: str, patch: dict[str, Any]) -> KernelEntry:
    """Apply a partial edit: a value of None puts an optional field back to its default."""
    entry = get_ssh_entry(name)
    if not isinstance(patch, dict):
        raise KernelSpecError("the edit must be a JSON object")
    if "kernel_name" in patch and patch["kernel_name"] != name:
        raise KernelSpecError("kernel_name cannot be changed", field="kernel_name")
    base = dict(entry.model) if entry.model else _salvage(entry)
    required = set(schema()["required"])
    props = schema()["properties"]
    for key, value in patch.items():
        if key not in props:
            raise InvalidField(key, "unknown field")
        if value is None:
            if key in required:
                raise InvalidField(key, "is required and cannot be cleared")
            base[key] = copy.deepcopy(props[key].get("default"))  # the schema's is shared
        else:
            base[key] = value
    return write(base, replace=True)


def _salvage(entry: KernelEntry) -> dict[str, Any]:
    """What an invalid SSH kernelspec still says, so an edit can repair it."""
    raw = entry.raw or {}
    config = ((raw.get("metadata") or {}).get("kernel_provisioner") or {}).get("config") or {}
    props = schema()["properties"]
    data = {k: v for k, v in config.items() if k in props} if isinstance(config, dict) else {}
    data.update({k: raw.get(k) for k in SPEC_FIELDS[1:] if raw.get(k) is not None})
    data["kernel_name"] = entry.name
    return data


def delete(name: str) -> None:
    entry = get_ssh_entry(name)
    target = kernels_dir() / name
    if Path(entry.resource_dir).resolve() != target.resolve():
        raise KernelSpecConflict(
            f"{name!r} lives in {entry.resource_dir}, outside your data dir; remove it there",
            field="kernel_name",
        )
    trash = target.with_name(f".{name}.deleted")
    shutil.rmtree(trash, ignore_errors=True)
    os.rename(target, trash)
    shutil.rmtree(trash, ignore_errors=True)
