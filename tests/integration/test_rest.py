"""The REST API against a real jupyter_server (jp_fetch) and the real test hosts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from helpers import body_of, call
from tornado.httpclient import AsyncHTTPClient

from sshpyk.server.openapi import document


async def test_crud_check_discover_launch_status(jp_fetch, test_hosts, jp_data_dir):
    created = await call(
        jp_fetch, "sshpyk", "kernelspecs", method="POST", body=body_of(test_hosts), expect=201
    )
    assert created["ssh"] and created["config"]["ssh_host_alias"] == "remote"
    # the server's own kernelspec API sees it at once (the launcher uses that)
    specs = await call(jp_fetch, "api", "kernelspecs")
    assert "rest-remote" in specs["kernelspecs"]
    res = specs["kernelspecs"]["rest-remote"]["resources"]
    assert "logo-svg" in res and "logo-64x64" in res

    listed = await call(jp_fetch, "sshpyk", "kernelspecs")
    assert any(k["name"] == "rest-remote" and k["ssh"] for k in listed["kernels"])
    one = await call(jp_fetch, "sshpyk", "kernelspecs", "rest-remote")
    assert one["config"]["launch_timeout"] == 30

    checked = await call(
        jp_fetch, "sshpyk", "kernelspecs", "rest-remote", "check", method="POST", body=b""
    )
    assert checked["ok"], checked
    assert {c["status"] for c in checked["checks"]} <= {"ok", "warn"}

    streamed = await call(
        jp_fetch,
        "sshpyk",
        "kernelspecs",
        "rest-remote",
        "check",
        method="POST",
        body=b"",
        params={"stream": "1"},
    )
    lines = [json.loads(x) for x in streamed.decode().splitlines()]
    assert [x["check"]["id"] for x in lines[:-1]][:4] == [
        "ssh_client",
        "ssh_config",
        "host_alias",
        "connection",
    ]
    assert lines[-1] == {"done": True, "name": "rest-remote", "ok": True}

    hosts = await call(
        jp_fetch,
        "sshpyk",
        "hosts",
        method="POST",
        body={"ssh_config": str(test_hosts.ssh_config)},
    )
    by = {h["alias"]: h for h in hosts["hosts"]}
    assert set(by) >= {"remote", "bastion", "internal"}
    assert by["internal"]["proxyjump"] == "bastion"
    assert by["remote"]["hostname"] == test_hosts["remote"].address
    assert by["remote"]["user"] == test_hosts.user

    found = await call(
        jp_fetch,
        "sshpyk",
        "hosts",
        "remote",
        "kernelspecs",
        method="POST",
        body={
            "remote_python_prefix": test_hosts.remote_python_prefix,
            "ssh_config": str(test_hosts.ssh_config),
        },
    )
    (py,) = [k for k in found["kernelspecs"] if k["name"] == "python3"]
    assert py["language"] == "python" and py["argv"]

    kernel = await call(
        jp_fetch, "api", "kernels", method="POST", body={"name": "rest-remote"}, expect=201
    )
    try:
        status = await call(jp_fetch, "sshpyk", "status")
        (mine,) = [k for k in status["kernels"] if k["kernel_id"] == kernel["id"]]
        assert mine["state"] == "connected" and mine["host_alias"] == "remote"
        assert mine["kernelspec"] == "rest-remote"
        assert isinstance(mine["rtt_ms"], float) and mine["rtt_ms"] < 1000
    finally:
        await call(jp_fetch, "api", "kernels", kernel["id"], method="DELETE", expect=204)
    status = await call(jp_fetch, "sshpyk", "status")
    assert not [k for k in status["kernels"] if k["kernel_id"] == kernel["id"]]

    patched = await call(
        jp_fetch,
        "sshpyk",
        "kernelspecs",
        "rest-remote",
        method="PATCH",
        body={"display_name": "Edited", "launch_timeout": None},
    )
    assert patched["config"]["display_name"] == "Edited"
    assert patched["config"]["launch_timeout"] == 60  # null: back to the default
    await call(
        jp_fetch, "sshpyk", "kernelspecs", method="POST", body=body_of(test_hosts), expect=409
    )
    await call(jp_fetch, "sshpyk", "kernelspecs", "rest-remote", method="DELETE", expect=204)
    await call(jp_fetch, "sshpyk", "kernelspecs", "rest-remote", expect=404)
    specs = await call(jp_fetch, "api", "kernelspecs")
    assert "rest-remote" not in specs["kernelspecs"]


async def test_local_kernels_are_not_ours_to_change(jp_fetch, jp_data_dir):
    local = Path(jp_data_dir) / "kernels" / "mine"
    local.mkdir(parents=True)
    (local / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Mine",
                "language": "python",
            }
        )
    )
    for method, tail, body in [
        ("PATCH", (), {"display_name": "x"}),
        ("DELETE", (), None),
        ("POST", ("check",), b""),
    ]:
        err = await call(
            jp_fetch, "sshpyk", "kernelspecs", "mine", *tail, method=method, body=body, expect=422
        )
        assert "local kernel" in err["message"] and err["field"] == "kernel_name"
    assert (local / "kernel.json").exists()
    await call(jp_fetch, "sshpyk", "kernelspecs", "nope", expect=404)
    await call(jp_fetch, "sshpyk", "kernelspecs", "nope", method="PATCH", body={}, expect=404)


BAD = [
    (
        "alias-option",
        {"ssh_host_alias": "-oProxyCommand=touch /tmp/sshpyk-rest-pwned"},
        "ssh_host_alias",
    ),
    (
        "alias-semicolon",
        {"ssh_host_alias": "remote;touch /tmp/sshpyk-rest-pwned"},
        "ssh_host_alias",
    ),
    (
        "prefix-subst",
        {"remote_python_prefix": "/x/$(touch /tmp/sshpyk-rest-pwned)"},
        "remote_python_prefix",
    ),
    (
        "prefix-semicolon",
        {"remote_python_prefix": "/x;touch /tmp/sshpyk-rest-pwned"},
        "remote_python_prefix",
    ),
    (
        "prefix-newline",
        {"remote_python_prefix": "/x\ntouch /tmp/sshpyk-rest-pwned"},
        "remote_python_prefix",
    ),
    (
        "mount-newline",
        {"mount_local_on_remote": [{"local_path": "/tmp", "remote_path": "/a\n/b"}]},
        "mount_local_on_remote[0].remote_path",
    ),
    ("mount-string", {"mount_local_on_remote": "/tmp:/a"}, "mount_local_on_remote"),
    ("mount-bool", {"mount_local_on_remote": False}, "mount_local_on_remote"),  # found by fuzz
    ("timeout-string", {"launch_timeout": "60"}, "launch_timeout"),
    ("timeout-bool", {"shutdown_timeout": True}, "shutdown_timeout"),
    ("name-type", {"kernel_name": 5}, "kernel_name"),
    ("name-slash", {"kernel_name": "../evil"}, "kernel_name"),
    # re.match's "$" matched before a final newline: "k\n" was written, then answered 500
    ("name-newline", {"kernel_name": "k\n"}, "kernel_name"),
    ("name-dot", {"kernel_name": "."}, "kernel_name"),
    ("name-dotdot", {"kernel_name": ".."}, "kernel_name"),
    ("name-cr", {"kernel_name": "k\r"}, "kernel_name"),
    ("alias-newline", {"ssh_host_alias": "gpu\n"}, "ssh_host_alias"),
    ("remote-kernel-newline", {"remote_kernel_name": "python3\n"}, "remote_kernel_name"),
    (
        "sshfs-options-newline",
        {
            "mount_local_on_remote": [
                {"local_path": "/tmp", "remote_path": "/a", "sshfs_options": "cache=no\n"}
            ]
        },
        "mount_local_on_remote[0].sshfs_options",
    ),
    ("unknown-field", {"surprise": 1}, "surprise"),
    # the slurm object: each member by name, an sbatch option by its entry, and what a Slurm
    # kernel cannot have with it
    (
        "slurm-wrap",
        {"slurm": {"sbatch_options": ["--exclusive", "--wrap=touch${IFS}/tmp/sshpyk-rest-pwned"]}},
        "slurm.sbatch_options[1]",
    ),
    ("slurm-output", {"slurm": {"sbatch_options": ["--output=/tmp/x"]}}, "slurm.sbatch_options[0]"),
    ("slurm-field-option", {"slurm": {"sbatch_options": ["-p"]}}, "slurm.sbatch_options[0]"),
    ("slurm-time", {"slurm": {"time": "1h"}}, "slurm.time"),
    ("slurm-partition-newline", {"slurm": {"partition": "gpu\n--wrap=id"}}, "slurm.partition"),
    ("slurm-cpus-zero", {"slurm": {"cpus": 0}}, "slurm.cpus"),
    ("slurm-unknown", {"slurm": {"nodes": 2}}, "slurm.nodes"),
    ("slurm-list", {"slurm": ["gpu"]}, "slurm"),
    ("slurm-forward", {"slurm": {}, "channels": "forward"}, "channels"),
    (
        "slurm-mounts",
        {"slurm": {}, "mount_local_on_remote": [{"local_path": "/tmp", "remote_path": "/a"}]},
        "mount_local_on_remote",
    ),
    ("missing-required", {"remote_kernel_name": ...}, "remote_kernel_name"),
]


@pytest.mark.parametrize(("case", "over", "field"), BAD, ids=[c for c, _, _ in BAD])
async def test_bad_input_is_400_and_changes_nothing(
    jp_fetch, test_hosts, jp_data_dir, case, over, field
):
    err = await call(
        jp_fetch,
        "sshpyk",
        "kernelspecs",
        method="POST",
        body=body_of(test_hosts, **over),
        expect=400,
    )
    assert err["field"] == field, err
    assert err["message"]
    kernels = Path(jp_data_dir) / "kernels"
    assert {p.name for p in kernels.iterdir()} <= {"echo"}  # pytest-jupyter's own kernel
    assert not Path("/tmp/sshpyk-rest-pwned").exists()
    # the same through PATCH on an existing kernel leaves its file as it was
    await call(
        jp_fetch,
        "sshpyk",
        "kernelspecs",
        method="POST",
        body=body_of(test_hosts, "keep"),
        expect=201,
    )
    before = (Path(jp_data_dir) / "kernels" / "keep" / "kernel.json").read_text()
    patch = {k: v for k, v in over.items() if k != "kernel_name" and v is not ...}
    if patch:
        await call(
            jp_fetch, "sshpyk", "kernelspecs", "keep", method="PATCH", body=patch, expect=400
        )
    assert (Path(jp_data_dir) / "kernels" / "keep" / "kernel.json").read_text() == before


async def test_a_slurm_kernel_through_rest(jp_fetch, test_hosts, jp_data_dir):
    # no channels given: a Slurm kernel gets relay; the answer has every member of slurm
    slurm = {"partition": "gpu", "time": "8:00:00", "sbatch_options": ["--exclusive"]}
    entry = await call(
        jp_fetch,
        "sshpyk",
        "kernelspecs",
        method="POST",
        body=body_of(test_hosts, "hpc", slurm=slurm),
        expect=201,
    )
    assert entry["config"]["channels"] == "relay"
    assert entry["config"]["slurm"] == {
        **dict.fromkeys(("cpus", "mem", "gpus", "account", "qos", "constraint")),
        **slurm,
        "walltime_warning": 10,
    }
    raw = json.loads((Path(jp_data_dir) / "kernels" / "hpc" / "kernel.json").read_text())
    assert raw["metadata"]["kernel_provisioner"]["config"]["slurm"] == slurm  # short
    # a PATCH changes the object whole; null turns Slurm off
    patched = await call(
        jp_fetch, "sshpyk", "kernelspecs", "hpc", method="PATCH", body={"slurm": {"cpus": 2}}
    )
    assert patched["config"]["slurm"]["cpus"] == 2 and patched["config"]["slurm"]["time"] is None
    off = await call(jp_fetch, "sshpyk", "kernelspecs", "hpc", method="PATCH", body={"slurm": None})
    assert off["config"]["slurm"] is None and off["config"]["channels"] == "relay"


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'"x"', b"null", b"x" * 70000])
async def test_malformed_bodies(jp_fetch, raw):
    err = await call(jp_fetch, "sshpyk", "kernelspecs", method="POST", body=raw, expect=400)
    assert err["message"]


async def test_discovery_refuses_bad_values_before_any_ssh(jp_fetch, test_hosts):
    async def discover(alias, body, expect=400):
        return await call(
            jp_fetch,
            "sshpyk",
            "hosts",
            alias,
            "kernelspecs",
            method="POST",
            body=body,
            expect=expect,
        )

    err = await discover("-oProxyCommand=x", {"remote_python_prefix": "/opt"})
    assert err["field"] == "ssh_host_alias"
    err = await discover("remote", {"remote_python_prefix": "/opt;id"})
    assert err["field"] == "remote_python_prefix"
    err = await discover("remote", {})
    assert err["field"] == "remote_python_prefix"
    err = await discover(
        "remote",
        {"remote_python_prefix": "/nonexistent", "ssh_config": str(test_hosts.ssh_config)},
    )
    # the words of errors.remote_failure, as a launch says them
    assert "'/nonexistent' does not exist on 'remote'" in err["message"], err


async def test_checks_run_in_parallel_and_never_block_the_server(jp_fetch, test_hosts, faults):
    for name, alias in (("par-remote", "remote"), ("par-internal", "internal")):
        await call(
            jp_fetch,
            "sshpyk",
            "kernelspecs",
            method="POST",
            body=body_of(test_hosts, name, ssh_host_alias=alias),
            expect=201,
        )
    faults.latency("remote", 400)  # every round trip with "remote" now takes 0.4 s more
    loop = asyncio.get_running_loop()
    done: dict[str, float] = {}

    async def check(name):
        r = await call(jp_fetch, "sshpyk", "kernelspecs", name, "check", method="POST", body=b"")
        done[name] = loop.time()
        return r

    t0 = loop.time()
    slow = asyncio.ensure_future(check("par-remote"))
    await asyncio.sleep(0.2)
    t = loop.time()
    await call(jp_fetch, "sshpyk", "version")
    assert loop.time() - t < 0.5, "the server stalled behind a slow check"
    fast = await check("par-internal")
    assert fast["ok"]
    assert not slow.done(), "the slow host's check should still be running"
    assert (await slow)["ok"]
    assert done["par-internal"] < done["par-remote"]
    assert done["par-remote"] - t0 > 1.0  # it really was slow


async def test_xsrf_is_enforced_for_cookie_sessions(
    jp_base_url, jp_http_port, jp_auth_header, http_server_client
):
    # log in as a browser would: the token in the URL gives a login cookie
    token = jp_auth_header["Authorization"].split()[-1]
    client = AsyncHTTPClient()
    base = f"http://localhost:{jp_http_port}{jp_base_url}"
    r = await client.fetch(f"{base}api/status?token={token}", raise_error=False)
    cookies = [c.split(";")[0] for c in r.headers.get_list("Set-Cookie")]
    assert cookies, "no login cookie"
    xsrf = [c for c in cookies if c.startswith("_xsrf=")]
    headers = {"Cookie": "; ".join(cookies)}
    ok = await client.fetch(f"{base}sshpyk/kernelspecs", headers=headers, raise_error=False)
    assert ok.code == 200  # the cookie alone authenticates a GET
    r = await client.fetch(
        f"{base}sshpyk/kernelspecs", method="POST", body="{}", headers=headers, raise_error=False
    )
    assert r.code == 403  # but a POST without the XSRF token is refused
    if xsrf:
        r = await client.fetch(
            f"{base}sshpyk/kernelspecs",
            method="POST",
            body="{}",
            headers={**headers, "X-XSRFToken": xsrf[0].split("=", 1)[1]},
            raise_error=False,
        )
        assert r.code == 400  # past the XSRF check: now the body is judged


def test_openapi_document_matches_the_route_table():
    import re

    from sshpyk.server.routes import ROUTES

    doc = document()
    # the route table's named groups are the document's path parameters
    routes = {re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", f"/sshpyk/{p}") for p, _ in ROUTES}
    assert set(doc["paths"]) == routes
    assert doc["components"]["schemas"]["SSHKernel"]["required"]


async def test_the_old_kernels_routes_still_answer(jp_fetch, test_hosts, jp_data_dir):
    """/sshpyk/kernels… is /sshpyk/kernelspecs… under its old name, for one release."""
    created = await call(
        jp_fetch, "sshpyk", "kernels", method="POST", body=body_of(test_hosts, "old"), expect=201
    )
    assert created["name"] == "old" and created["ssh"]
    listed = await call(jp_fetch, "sshpyk", "kernels")
    assert listed == await call(jp_fetch, "sshpyk", "kernelspecs")
    assert await call(jp_fetch, "sshpyk", "kernels", "old") == created
    patched = await call(
        jp_fetch, "sshpyk", "kernels", "old", method="PATCH", body={"display_name": "Older"}
    )
    assert patched["config"]["display_name"] == "Older"
    err = await call(
        jp_fetch, "sshpyk", "kernels", "nope", "check", method="POST", body=b"", expect=404
    )
    assert err == {"message": "no kernelspec named 'nope'", "field": "kernel_name"}
    await call(jp_fetch, "sshpyk", "kernels", "old", method="DELETE", expect=204)
    await call(jp_fetch, "sshpyk", "kernelspecs", "old", expect=404)


async def test_openapi_is_served(jp_fetch):
    doc = await call(jp_fetch, "sshpyk", "openapi.json")
    assert doc["openapi"].startswith("3.") and "/sshpyk/kernelspecs" in doc["paths"]


async def test_status_shows_a_launching_kernel_and_its_step(jp_fetch, test_hosts):
    import shlex

    script = f'#!/bin/sh\nsleep 3\nexec {test_hosts.remote_python_prefix}/bin/python "$@"\n'
    setup = (
        f"mkdir -p ~/slowpy/bin && printf %s {shlex.quote(script)} > ~/slowpy/bin/python "
        "&& chmod +x ~/slowpy/bin/python"
    )
    assert test_hosts.ssh("remote", setup).returncode == 0
    await call(
        jp_fetch,
        "sshpyk",
        "kernelspecs",
        method="POST",
        body=body_of(test_hosts, "slow", remote_python_prefix="~/slowpy"),
        expect=201,
    )
    start = asyncio.ensure_future(
        call(jp_fetch, "api", "kernels", method="POST", body={"name": "slow"}, expect=201)
    )
    seen = []
    while not start.done():
        status = await call(jp_fetch, "sshpyk", "status")
        seen += [(k["state"], k["step"]) for k in status["kernels"] if k["kernelspec"] == "slow"]
        await asyncio.sleep(0.2)
    kernel = await start
    assert ("launching", "starting the remote kernel") in seen, seen
    status = await call(jp_fetch, "sshpyk", "status")
    (mine,) = [k for k in status["kernels"] if k["kernel_id"] == kernel["id"]]
    assert mine["state"] == "connected" and mine["step"] is None
    await call(jp_fetch, "api", "kernels", kernel["id"], method="DELETE", expect=204)
