"""The container health check's command and verdict (container_check.py): pure logic; the
check against real podman is in integration/test_container.py."""

from __future__ import annotations

from sshpyk import container_check as cc

BOX = {"runtime": "podman", "image": "localhost/x:1", "python": "/opt/py/bin/python"}


def test_the_command_runs_the_image_once_after_the_prelude():
    cmd = cc.command(BOX, ["module load podman"])
    assert cmd.startswith("exec /bin/sh -c ") and "bash -l" in cmd  # a login shell
    assert "module load podman" in cmd and "localhost/x:1" in cmd
    assert "--rm" in cmd and "/opt/py/bin/python" in cmd and "import ipykernel" in cmd
    plain = cc.command({**BOX, "runtime": "docker"})
    assert "bash -l" not in plain and "$(id -u):$(id -g)" in plain


def test_verdicts_say_what_is_missing():
    ok, value, _ = cc.verdict("IPYKERNEL 7.4.0\n", BOX, "gpu")
    assert ok and value == "podman localhost/x:1: ipykernel 7.4.0"
    ok, _, hint = cc.verdict("MISSING\n", BOX, "gpu")
    assert not ok and hint == "podman is not on 'gpu''s PATH (after the prelude)"
    ok, _, hint = cc.verdict("Error: localhost/x:1: image not known\n", BOX, "gpu")
    assert not ok and "image not known" in hint and "/opt/py/bin/python" in hint
    line = 'SSHPYK {"error": "prelude_failed", "line": 1, "rc": 1, "output": ""}'
    ok, _, hint = cc.verdict(line + "\n", BOX, "gpu")
    assert not ok and "prelude failed" in hint
