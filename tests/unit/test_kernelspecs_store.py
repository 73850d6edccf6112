"""The kernelspec store (``sshpyk/kernelspecs.py``) against a private JUPYTER_DATA_DIR: what
it writes, and which refusal of ``sshpyk.errors`` each wrong request raises (the REST API and
the CLI map those classes; the store carries no HTTP status)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sshpyk import kernelspecs
from sshpyk.errors import (
    Conflict,
    KernelSpecConflict,
    KernelSpecError,
    KernelSpecNotFound,
    NotAnSSHKernel,
)
from sshpyk.model import PROVISIONER_NAME, InvalidField


def model(name: str = "gpu", **over) -> dict:
    return {
        "kernel_name": name,
        "display_name": f"GPU {name}",
        "language": "python",
        "ssh_host_alias": "gpu",
        "remote_python_prefix": "/opt/conda",
        "remote_kernel_name": "python3",
        **over,
    }


def data_kernels() -> Path:
    return Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels"


def local_kernel(root: Path, name: str = "mine") -> Path:
    """A plain local kernelspec (no provisioner) in ``root``."""
    d = root / name
    d.mkdir(parents=True)
    argv = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (d / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Mine", "language": "python"})
    )
    return d


def other_path_kernels() -> Path:
    """A kernels dir on JUPYTER_PATH: found by Jupyter, but not the user's data dir."""
    return Path(os.environ["JUPYTER_PATH"]) / "kernels"


def test_write_then_get_reads_back_the_model():
    written = kernelspecs.write(model(launch_timeout=30))
    entry = kernelspecs.get_entry("gpu")
    assert entry.is_ssh and entry.model == written.model
    assert entry.model["launch_timeout"] == 30
    assert Path(entry.resource_dir) == data_kernels() / "gpu"
    raw = json.loads((data_kernels() / "gpu" / "kernel.json").read_text())
    assert raw["metadata"]["kernel_provisioner"]["provisioner_name"] == PROVISIONER_NAME
    files = {p.name for p in (data_kernels() / "gpu").iterdir()}
    assert files == {"kernel.json", *kernelspecs.LOGOS}


def test_write_leaves_no_temporary_directory():
    kernelspecs.write(model())
    kernelspecs.write(model(display_name="Again"), replace=True)
    assert [p.name for p in data_kernels().iterdir()] == ["gpu"]


def test_list_shows_ssh_and_local_kernels():
    kernelspecs.write(model())
    local_kernel(data_kernels())
    by_name = {e.name: e.to_dict() for e in kernelspecs.list_entries()}
    assert by_name["gpu"]["ssh"] and by_name["gpu"]["config"]["ssh_host_alias"] == "gpu"
    assert not by_name["mine"]["ssh"] and by_name["mine"]["display_name"] == "Mine"


def test_one_unreadable_kernelspec_does_not_hide_the_others():
    kernelspecs.write(model())
    broken = data_kernels() / "broken"
    broken.mkdir()
    (broken / "kernel.json").write_text("{not json")
    by_name = {e.name: e for e in kernelspecs.list_entries()}
    assert by_name["broken"].error and "unreadable" in by_name["broken"].error
    assert by_name["gpu"].model is not None


def test_a_second_write_of_a_name_is_a_conflict():
    kernelspecs.write(model())
    with pytest.raises(KernelSpecConflict) as e:
        kernelspecs.write(model(display_name="Other"))
    assert e.value.field == "kernel_name" and "already exists" in str(e.value)
    assert isinstance(e.value, Conflict) and isinstance(e.value, KernelSpecError)
    assert kernelspecs.get_entry("gpu").model["display_name"] == "GPU gpu"  # unchanged


def test_replace_overwrites_an_ssh_kernel():
    kernelspecs.write(model())
    kernelspecs.write(model(display_name="Other"), replace=True)
    assert kernelspecs.get_entry("gpu").model["display_name"] == "Other"


def test_a_local_kernel_is_never_overwritten():
    local = local_kernel(data_kernels())
    before = (local / "kernel.json").read_text()
    with pytest.raises(KernelSpecConflict, match="local kernel"):
        kernelspecs.write(model("mine"), replace=True)
    assert (local / "kernel.json").read_text() == before


def test_a_name_taken_outside_the_data_dir_is_a_conflict():
    local_kernel(other_path_kernels(), "shared")
    with pytest.raises(KernelSpecConflict, match="outside your data dir") as e:
        kernelspecs.write(model("shared"))
    assert e.value.field == "kernel_name"
    assert not (data_kernels() / "shared").exists()


def test_an_invalid_model_is_refused_naming_its_field():
    with pytest.raises(InvalidField) as e:
        kernelspecs.write(model(ssh_host_alias="-oProxyCommand=x"))
    assert e.value.field == "ssh_host_alias"
    assert not data_kernels().exists() or not any(data_kernels().iterdir())


def test_an_unknown_name_is_not_found():
    with pytest.raises(KernelSpecNotFound) as e:
        kernelspecs.get_entry("nope")
    assert e.value.field == "kernel_name"
    with pytest.raises(KernelSpecNotFound):
        kernelspecs.update("nope", {})
    with pytest.raises(KernelSpecNotFound):
        kernelspecs.delete("nope")


def test_a_local_kernel_is_not_an_ssh_kernel():
    local_kernel(data_kernels())
    for op in (
        lambda: kernelspecs.get_ssh_entry("mine"),
        lambda: kernelspecs.update("mine", {"display_name": "x"}),
        lambda: kernelspecs.delete("mine"),
    ):
        with pytest.raises(NotAnSSHKernel, match="local kernel") as e:
            op()
        assert e.value.field == "kernel_name"
    assert (data_kernels() / "mine" / "kernel.json").exists()


def _break_on_disk(name: str = "gpu") -> None:
    """Make the kernelspec invalid on disk: a host alias the model refuses."""
    path = data_kernels() / name / "kernel.json"
    raw = json.loads(path.read_text())
    raw["metadata"]["kernel_provisioner"]["config"]["ssh_host_alias"] = "-oBad"
    path.write_text(json.dumps(raw))


def test_an_invalid_ssh_kernel_is_refused_when_a_valid_one_is_needed():
    kernelspecs.write(model())
    _break_on_disk()
    assert kernelspecs.get_ssh_entry("gpu").model is None  # listed, with its error
    with pytest.raises(KernelSpecError) as e:
        kernelspecs.get_ssh_entry("gpu", valid=True)
    assert type(e.value) is KernelSpecError and e.value.field == "ssh_host_alias"


def test_update_edits_and_null_restores_the_default():
    kernelspecs.write(model(launch_timeout=30))
    entry = kernelspecs.update("gpu", {"display_name": "Edited", "launch_timeout": None})
    assert entry.model["display_name"] == "Edited"
    assert entry.model["launch_timeout"] == 60


def test_update_repairs_an_invalid_kernelspec():
    kernelspecs.write(model())
    _break_on_disk()
    entry = kernelspecs.update("gpu", {"ssh_host_alias": "gpu2"})
    assert entry.model["ssh_host_alias"] == "gpu2" and entry.error is None


@pytest.mark.parametrize(
    ("patch", "error", "field"),
    [
        ({"kernel_name": "other"}, KernelSpecError, "kernel_name"),
        (["display_name"], KernelSpecError, None),
        ({"surprise": 1}, InvalidField, "surprise"),
        ({"ssh_host_alias": None}, InvalidField, "ssh_host_alias"),
        ({"launch_timeout": "60"}, InvalidField, "launch_timeout"),
    ],
    ids=["rename", "not-an-object", "unknown-field", "clear-required", "bad-value"],
)
def test_bad_edits_are_refused_and_change_nothing(patch, error, field):
    kernelspecs.write(model())
    before = (data_kernels() / "gpu" / "kernel.json").read_text()
    with pytest.raises(error) as e:
        kernelspecs.update("gpu", patch)
    assert type(e.value) is error and e.value.field == field
    assert (data_kernels() / "gpu" / "kernel.json").read_text() == before


def test_delete_removes_the_kernelspec():
    kernelspecs.write(model())
    kernelspecs.delete("gpu")
    assert not (data_kernels() / "gpu").exists()
    assert list(data_kernels().iterdir()) == []
    with pytest.raises(KernelSpecNotFound):
        kernelspecs.get_entry("gpu")


def test_an_ssh_kernel_outside_the_data_dir_is_not_deleted():
    kernelspecs.write(model())
    elsewhere = other_path_kernels()
    elsewhere.mkdir(parents=True)
    os.rename(data_kernels() / "gpu", elsewhere / "gpu")
    with pytest.raises(KernelSpecConflict, match="outside your data dir"):
        kernelspecs.delete("gpu")
    assert (elsewhere / "gpu" / "kernel.json").exists()


def test_refusals_carry_no_http_status():
    with pytest.raises(KernelSpecNotFound) as e:
        kernelspecs.get_entry("nope")
    assert not hasattr(e.value, "status")
    source = Path(kernelspecs.__file__).read_text()
    assert "status=" not in source and "409" not in source and "422" not in source
