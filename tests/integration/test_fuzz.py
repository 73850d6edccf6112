"""Property-based fuzz of the REST API from its own OpenAPI document: no input gives a 5xx.

The server and schemathesis run inside a network namespace that has nothing but loopback,
so whatever aliases and paths the fuzzer invents, no ssh, DNS or other packet can leave it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.topology import kill_pids, netns_list, run

NS = "spkfuzz"
BIN = Path(sys.executable).parent


@pytest.fixture
def sealed_server(netns_hosts, tmp_path):
    """A real Jupyter server with sshpyk in a namespace with loopback only."""
    if not shutil.which(str(BIN / "schemathesis")):
        pytest.fail("schemathesis is not installed (it is in the test extras)")
    if NS in netns_list():
        run(["ip", "netns", "del", NS])
    run(["ip", "netns", "add", NS])
    run(["ip", "-n", NS, "link", "set", "lo", "up"])
    token = secrets.token_hex(16)
    port = 18888
    env = {
        **os.environ,
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "c"),
        "JUPYTER_PATH": str(tmp_path / "data"),
    }
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            NS,
            str(BIN / "jupyter"),
            "server",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            "--allow-root",
            f"--ServerApp.root_dir={tmp_path}",
            "--ServerApp.jpserver_extensions=sshpyk=True",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            probe = run(
                [
                    "ip",
                    "netns",
                    "exec",
                    NS,
                    sys.executable,
                    "-c",
                    f"import urllib.request as u; u.urlopen('{url}/api/status?token={token}')",
                ],
                check=False,
            )
            if probe.returncode == 0:
                break
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            time.sleep(0.3)
        else:
            pytest.fail("the sealed server did not start")
        yield url, token, env
    finally:
        kill_pids([server.pid], grace=10)
        server.wait(timeout=10)
        pids = run(["ip", "netns", "pids", NS], check=False).stdout.split()
        kill_pids(pids)
        run(["ip", "netns", "del", NS], check=False)


# Discovery (of a prefix's kernelspecs, of a host's environments) connects to the host it is
# given: for the aliases the fuzzer invents, the documented answer is 502 (the host could not
# be reached).  It is fuzzed on its own, with "every status is one the document declares"
# instead of "no 5xx".
DISCOVERY = "^discover(Kernelspecs|Environments)$"


@pytest.mark.parametrize(
    ("selection", "checks"),
    [
        (["--exclude-operation-id-regex", DISCOVERY], "not_a_server_error"),
        (["--include-operation-id-regex", DISCOVERY], "status_code_conformance"),
    ],
    ids=["no-5xx", "discovery-documented-statuses"],
)
def test_no_input_makes_the_api_fail(sealed_server, selection, checks):
    url, token, env = sealed_server
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            NS,
            str(BIN / "schemathesis"),
            "run",
            f"{url}/sshpyk/openapi.json",
            "-H",
            f"Authorization: token {token}",
            *selection,
            "--checks",
            checks,
            "--max-examples",
            "50",
            "--seed",
            "1",
            "--request-timeout",
            "30",
            "--workers",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        cwd=Path(env["JUPYTER_DATA_DIR"]).parent,  # its crash cache stays out of the repo
    )
    tail = out.stdout[-4000:]
    print(tail)  # the per-operation summary, kept in the test log
    assert out.returncode == 0, tail + out.stderr[-2000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", out.stdout)
    assert generated, tail
    # it really exercised the API
    assert int(generated.group(2)) >= (200 if checks == "not_a_server_error" else 20), tail
    assert " failed" not in out.stdout.splitlines()[-5], tail
