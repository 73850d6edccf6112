"""The OpenAPI document (``sshpyk/server/openapi.py``) and its committed copy
``sshpyk/resources/openapi.json``, which the frontend's TypeScript state types are checked
against: the copy must be what the code builds, its state enums those of ``sshpyk.states``."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import files

import pytest

from sshpyk.server.openapi import document, dumps
from sshpyk.states import CheckStatus, MountState, TunnelState, values

REGENERATE = "python -m sshpyk.server.openapi > sshpyk/resources/openapi.json"
VERBS = {"get", "post", "put", "patch", "delete"}


def committed() -> dict:
    return json.loads(files("sshpyk.resources").joinpath("openapi.json").read_text())


def _unversioned(doc: dict) -> dict:
    # the package's version changes with every release; the document's content does not
    doc = json.loads(json.dumps(doc))
    doc["info"].pop("version")
    return doc


def _operations(doc: dict):
    for path, item in doc["paths"].items():
        for verb, op in item.items():
            if verb in VERBS:
                yield path, verb, op


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_the_committed_document_is_what_the_code_builds():
    assert _unversioned(committed()) == _unversioned(document()), f"run: {REGENERATE}"


def test_the_committed_file_is_written_as_the_module_prints_it():
    text = files("sshpyk.resources").joinpath("openapi.json").read_text()
    assert text == dumps(json.loads(text)), f"run: {REGENERATE}"


def test_python_m_prints_the_document():
    out = subprocess.run(
        [sys.executable, "-m", "sshpyk.server.openapi"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(out) == json.loads(json.dumps(document()))


@pytest.mark.parametrize(
    ("name", "enum"),
    [("TunnelState", TunnelState), ("MountState", MountState), ("CheckStatus", CheckStatus)],
)
def test_state_enums_come_from_sshpyk_states(name, enum):
    for doc in (document(), committed()):
        assert doc["components"]["schemas"][name] == {"type": "string", "enum": values(enum)}


def test_the_shapes_that_carry_a_state_use_the_enums():
    schemas = document()["components"]["schemas"]
    assert schemas["KernelStatus"]["properties"]["state"] == {
        "$ref": "#/components/schemas/TunnelState"
    }
    assert schemas["MountStatus"]["properties"]["state"] == {
        "$ref": "#/components/schemas/MountState"
    }
    assert schemas["Check"]["properties"]["status"] == {"$ref": "#/components/schemas/CheckStatus"}
    # and the responses use those shapes
    status = document()["paths"]["/sshpyk/status"]["get"]["responses"]["200"]
    kernels = status["content"]["application/json"]["schema"]["properties"]["kernels"]
    assert kernels["items"] == {"$ref": "#/components/schemas/KernelStatus"}


def test_every_reference_resolves():
    doc = document()
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref


def test_operation_ids_are_unique():
    ids = [op["operationId"] for _, _, op in _operations(document())]
    assert len(ids) == len(set(ids))


def test_every_operation_documents_the_403_and_an_error_shape():
    for path, verb, op in _operations(document()):
        assert "403" in op["responses"], (path, verb)
        for code, response in op["responses"].items():
            if code >= "400":
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }, (path, verb, code)


def test_the_old_kernelspec_routes_are_deprecated_aliases():
    paths = document()["paths"]
    # /sshpyk/kernels/{kernel_id}/... are running kernels' routes (the future of the name)
    old = {
        p: item
        for p, item in paths.items()
        if p.split("/")[2] == "kernels" and "{kernel_id}" not in p
    }
    assert set(old) == {"/sshpyk/kernels", "/sshpyk/kernels/{name}", "/sshpyk/kernels/{name}/check"}
    for path, item in old.items():
        current = paths[path.replace("/sshpyk/kernels", "/sshpyk/kernelspecs", 1)]
        assert set(item) == set(current)
        for verb, op in item.items():
            if verb in VERBS:
                assert op["deprecated"] is True
                assert op["responses"] == current[verb]["responses"]
                assert "deprecated" not in current[verb]


def test_the_kernel_schema_is_the_one_the_api_validates_with():
    from sshpyk.model import schema

    doc = document()["components"]["schemas"]
    assert doc["SSHKernel"]["required"] == schema()["required"]
    assert set(doc["SSHKernel"]["properties"]) == set(schema()["properties"])
    assert "required" not in doc["SSHKernelPatch"]
    assert not [k for k in json.dumps(doc["SSHKernel"]).split('"') if k.startswith("x-sshpyk")]
