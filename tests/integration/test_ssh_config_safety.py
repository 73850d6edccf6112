"""An ssh config is a program in disguise: no request chooses one by its query string, and
every config sshpyk accepts (REST, CLI, a kernelspec on disk) is a small regular file that
only its user (or root) can change.  Review finding H1 (and M9: ``ssh -G`` concurrency).

Every test here runs the real jupyter_server (jp_fetch), the real ssh and the real test
hosts; a ``Match exec "touch MARKER"`` line is the proof that nothing ran.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import subprocess
import time
from pathlib import Path

import pytest
from helpers import BIN, body_of, call
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

NOBODY = 65534
PRIVATE_KEY_LINE = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"


def evil_config(tmp_path: Path, test_hosts, name="evil_config") -> tuple[Path, Path]:
    """A config that would run ``touch MARKER`` as soon as ssh reads it."""
    marker = tmp_path / f"PWNED-{name}"
    cfg = tmp_path / name
    cfg.write_text(
        f"Include {test_hosts.ssh_config}\n"
        f'Match exec "touch {marker}"\n  User x\n'
        "Host evil\n  ProxyCommand touch " + str(marker) + "; exit 1\n"
    )
    cfg.chmod(0o600)
    return cfg, marker


def unsafe_configs(tmp_path: Path, test_hosts) -> dict[str, str]:
    """One config path per way a file can be unfit to hand to ssh."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    shared, _ = evil_config(tmp_path, test_hosts, "group_writable")
    shared.chmod(0o620)
    foreign, _ = evil_config(tmp_path, test_hosts, "foreign")
    os.chown(foreign, NOBODY, NOBODY)
    big = tmp_path / "big"
    big.write_text("Host big\n" + "# padding\n" * 120_000)
    big.chmod(0o600)
    return {
        "fifo": str(fifo),
        "dev-zero": "/dev/zero",
        "directory": str(tmp_path),
        "group-writable": str(shared),
        "other-owner": str(foreign),
        "over-1MiB": str(big),
        "missing": str(tmp_path / "nope"),
    }


CASES = ["fifo", "dev-zero", "directory", "group-writable", "other-owner", "over-1MiB", "missing"]


async def hosts_of(jp_fetch, body: dict, expect: int = 200):
    return await call(jp_fetch, "sshpyk", "hosts", method="POST", body=body, expect=expect)


async def discover(jp_fetch, alias: str, body: dict, expect: int = 200):
    return await call(
        jp_fetch, "sshpyk", "hosts", alias, "kernelspecs", method="POST", body=body, expect=expect
    )


async def test_no_get_takes_a_config_or_a_program(jp_fetch, test_hosts, tmp_path):
    cfg, marker = evil_config(tmp_path, test_hosts)
    for params in ({"ssh_config": str(cfg)}, {"ssh": "/usr/bin/touch"}):
        err = await call(jp_fetch, "sshpyk", "hosts", params=params, expect=400)
        assert err["field"] in params
    # discovery runs a remote python: never a GET
    await call(
        jp_fetch,
        "sshpyk",
        "hosts",
        "evil",
        "kernelspecs",
        params={"remote_python_prefix": "/opt", "ssh_config": str(cfg)},
        expect=405,
    )
    assert not marker.exists(), "a GET made ssh obey a config named in its query"
    # a GET without parameters lists the server user's own default config, and works
    hosts = await call(jp_fetch, "sshpyk", "hosts")
    assert hosts["ssh_config"] == str(Path("~/.ssh/config").expanduser())


async def test_a_cookie_and_a_foreign_page_cannot_run_a_config(
    jp_base_url, jp_http_port, jp_auth_header, http_server_client, test_hosts, tmp_path
):
    """The review's one-click attack: a logged-in browser sent to our URL by another site."""
    cfg, marker = evil_config(tmp_path, test_hosts)
    token = jp_auth_header["Authorization"].split()[-1]
    client = AsyncHTTPClient()
    base = f"http://localhost:{jp_http_port}{jp_base_url}"
    r = await client.fetch(f"{base}api/status?token={token}", raise_error=False)
    cookies = [c.split(";")[0] for c in r.headers.get_list("Set-Cookie")]
    assert cookies, "no login cookie"
    headers = {"Cookie": "; ".join(cookies), "Referer": "https://evil.example/"}
    r = await client.fetch(
        f"{base}sshpyk/hosts?ssh_config={cfg}", headers=headers, raise_error=False
    )
    assert r.code == 400
    # the same as a POST: the XSRF check stops it before anything reads the file
    for path in ("sshpyk/hosts", "sshpyk/hosts/evil/kernelspecs"):
        r = await client.fetch(
            f"{base}{path}",
            method="POST",
            body=json.dumps({"ssh_config": str(cfg), "remote_python_prefix": "/opt"}),
            headers=headers,
            raise_error=False,
        )
        assert r.code == 403, (path, r.code)
    assert not marker.exists()


async def test_post_discovery_works_and_never_takes_the_ssh_binary(jp_fetch, test_hosts, tmp_path):
    err = await hosts_of(
        jp_fetch, {"ssh_config": str(test_hosts.ssh_config), "ssh": "/usr/bin/touch"}, expect=400
    )
    assert err["field"] == "ssh" and "server's configuration" in err["message"]
    err = await discover(
        jp_fetch,
        "remote",
        {"remote_python_prefix": test_hosts.remote_python_prefix, "ssh": "/bin/sh"},
        expect=400,
    )
    assert err["field"] == "ssh"
    found = await discover(
        jp_fetch,
        "remote",
        {
            "remote_python_prefix": test_hosts.remote_python_prefix,
            "ssh_config": str(test_hosts.ssh_config),
        },
    )
    assert "python3" in [k["name"] for k in found["kernelspecs"]]


@pytest.mark.parametrize("case", CASES)
async def test_unsafe_config_files_are_refused_at_once(
    jp_fetch, test_hosts, tmp_path, jp_data_dir, case
):
    path = unsafe_configs(tmp_path, test_hosts)[case]
    t0 = time.monotonic()
    err = await hosts_of(jp_fetch, {"ssh_config": path}, expect=400)
    assert err["field"] == "ssh_config" and path in err["message"], err
    err = await discover(
        jp_fetch,
        "remote",
        {"ssh_config": path, "remote_python_prefix": test_hosts.remote_python_prefix},
        expect=400,
    )
    assert err["field"] == "ssh_config"
    err = await call(
        jp_fetch,
        "sshpyk",
        "kernelspecs",
        method="POST",
        body=body_of(test_hosts, "unsafe", ssh_config=path),
        expect=400,
    )
    assert err["field"] == "ssh_config"
    assert time.monotonic() - t0 < 3, "refusing must not wait on the file"
    assert not (Path(jp_data_dir) / "kernels" / "unsafe").exists()
    assert not list(tmp_path.glob("PWNED-*"))


async def test_fifos_never_pin_the_servers_threads(jp_fetch, test_hosts, tmp_path):
    """Eight requests naming a FIFO used to hold every executor thread (and so
    jupyter_server's own /api/kernelspecs) until someone wrote to the FIFO."""
    fifo = unsafe_configs(tmp_path, test_hosts)["fifo"]
    await asyncio.gather(
        *(
            call(jp_fetch, "sshpyk", "hosts", method="POST", body={"ssh_config": fifo}, expect=400)
            for _ in range(12)
        )
    )
    t0 = time.monotonic()
    await call(jp_fetch, "api", "kernelspecs")
    await call(jp_fetch, "sshpyk", "kernelspecs")
    assert time.monotonic() - t0 < 5


async def test_errors_never_echo_a_files_contents(jp_fetch, test_hosts, tmp_path):
    # a private key named as a config: ssh answers "Bad configuration option: -----begin"
    key = tmp_path / "id_test"
    key.write_text(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        f"{PRIVATE_KEY_LINE}\n"
        "Host leaky\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    )
    key.chmod(0o600)
    hosts = await hosts_of(jp_fetch, {"ssh_config": str(key)})
    text = json.dumps(hosts)
    assert [h["alias"] for h in hosts["hosts"]] == ["leaky"]
    assert "line 1" in hosts["hosts"][0]["error"]  # where, without what
    err = await discover(
        jp_fetch, "leaky", {"ssh_config": str(key), "remote_python_prefix": "/opt"}, expect=502
    )
    text += json.dumps(err)
    assert "ssh rejected the configuration" in err["message"]
    for secret in ("begin", "BEGIN", PRIVATE_KEY_LINE[:20], PRIVATE_KEY_LINE[:20].lower()):
        assert secret not in text, text


async def test_500_aliases_under_a_256_fd_limit(jp_fetch, test_hosts, tmp_path):
    """``ssh -G`` per alias, at most 8 at once: 500 aliases answer under macOS's default
    limit of 256 open files (all at once gave EMFILE and a 500 from about 160)."""
    cfg = tmp_path / "many"
    cfg.write_text(
        f"Include {test_hosts.ssh_config}\n"
        + "".join(f"Host h{i}\n  HostName 10.200.255.{i % 250 + 1}\n" for i in range(500))
    )
    cfg.chmod(0o600)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    assert in_use < 200, f"the test process already holds {in_use} fds"
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        hosts = await hosts_of(jp_fetch, {"ssh_config": str(cfg)})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    # this test's h0..h499 (the included config has hosts of its own: hpc, ...)
    mine = [h for h in hosts["hosts"] if re.fullmatch(r"h\d+", h["alias"])]
    assert len(mine) == 500
    assert not [h for h in mine if "error" in h]
    assert mine[7]["hostname"] == "10.200.255.8"


def test_cli_refuses_unsafe_configs_with_exit_2(test_hosts, tmp_path):
    env = {**os.environ, "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    env["JUPYTER_PATH"] = env["JUPYTER_DATA_DIR"]
    for case, path in unsafe_configs(tmp_path, test_hosts).items():
        for argv in (
            [
                "add",
                "--kernel-name",
                "k",
                "--display-name",
                "K",
                "--language",
                "python",
                "--ssh-host-alias",
                "remote",
                "--ssh-config",
                path,
                "--remote-python-prefix",
                test_hosts.remote_python_prefix,
                "--remote-kernel-name",
                "python3",
            ],
            ["reap", "remote", "--ssh-config", path, "--remote-python-prefix", "/opt"],
        ):
            t0 = time.monotonic()
            r = subprocess.run(
                [str(BIN / "sshpyk"), *argv], capture_output=True, text=True, env=env, timeout=30
            )
            assert r.returncode == 2, (case, argv[0], r.stderr)
            assert "ssh_config" in r.stderr and path in r.stderr, r.stderr
            assert time.monotonic() - t0 < 10
    assert not (tmp_path / "data" / "kernels").exists()
    assert not list(tmp_path.glob("PWNED-*"))


async def test_a_kernelspec_on_disk_with_an_unsafe_config_neither_launches_nor_checks(
    jp_fetch, test_hosts, tmp_path, jp_data_dir
):
    """A config made group-writable after the kernelspec was written: the launch and the
    check refuse it, and nothing in it runs."""
    cfg, marker = evil_config(tmp_path, test_hosts)
    await call(
        jp_fetch,
        "sshpyk",
        "kernelspecs",
        method="POST",
        body=body_of(test_hosts, "later-unsafe", ssh_config=str(cfg)),
        expect=201,
    )
    marker.unlink(missing_ok=True)  # ssh -G ran it when the kernelspec was written: fine
    cfg.chmod(0o666)
    try:
        r = await jp_fetch(
            "api", "kernels", method="POST", body=json.dumps({"name": "later-unsafe"})
        )
    except HTTPClientError as e:
        r = e.response
    assert r.code >= 400, "a kernel started with an unsafe ssh config"
    err = await call(
        jp_fetch,
        "sshpyk",
        "kernelspecs",
        "later-unsafe",
        "check",
        method="POST",
        body=b"",
        expect=400,
    )
    assert "ssh_config" in err["message"] and "writable by group or others" in err["message"]
    # nothing was lost: the kernelspec stays, to be repaired with an edit
    assert (Path(jp_data_dir) / "kernels" / "later-unsafe" / "kernel.json").exists()
    assert not marker.exists()


def test_a_refused_launch_says_why(test_hosts, tmp_path, specs, managers, jp_asyncio_loop):
    cfg, marker = evil_config(tmp_path, test_hosts)
    cfg.chmod(0o664)
    name = specs("ssh-unsafe-config", ssh_config=str(cfg))
    km = managers(name)
    with pytest.raises(Exception, match="writable by group or others") as e:
        jp_asyncio_loop.run_until_complete(km.start_kernel())
    assert str(cfg) in str(e.value)
    assert not marker.exists()


async def test_checks_of_100_hosts_under_a_256_fd_limit(test_hosts, tmp_path):
    """Checks share their work per host but used to run every host's at once: 100 hosts
    meant 100 ssh processes (and their pipes) together.  At most 8 now, so every host gets
    its real answer (here: authentication refused) under macOS's default fd limit."""
    from sshpyk.checks import check_many

    cfg = tmp_path / "hundred"
    cfg.write_text(
        "".join(
            f"Host c{i}\n  HostName {test_hosts['remote'].address}\n  User nosuchuser{i}\n"
            for i in range(100)
        )
        # "Match all": an Include after a Host block would belong to that block alone
        + f"Match all\nInclude {test_hosts.ssh_config}\n"
    )
    cfg.chmod(0o600)
    models = [
        {
            "kernel_name": f"c{i}",
            "ssh_host_alias": f"c{i}",
            "ssh_config": str(cfg),
            "remote_python_prefix": test_hosts.remote_python_prefix,
            "remote_kernel_name": "python3",
        }
        for i in range(100)
    ]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert len(os.listdir("/proc/self/fd")) < 200
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        results = await check_many(models, timeout=30)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    kinds = {}
    for checks in results.values():
        (conn,) = [c for c in checks if c.id == "connection"]
        kinds[conn.value] = kinds.get(conn.value, 0) + 1
    assert kinds == {"auth_failed": 100}, kinds


async def test_an_orphans_config_made_unsafe_is_never_run(
    jp_fetch, test_hosts, tmp_path, monkeypatch
):
    """A registry record names the config its kernel was started with; listing, shutting
    down and reaping check it again before ssh reads it."""
    import uuid

    from sshpyk import registry

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    cfg, marker = evil_config(tmp_path, test_hosts)
    cfg.chmod(0o664)
    rec = registry.Record(
        kernel_id=str(uuid.uuid4()),
        kernelspec="gone",
        display_name="Gone",
        config={
            "ssh_host_alias": "evil",
            "ssh_config": str(cfg),
            "remote_python_prefix": test_hosts.remote_python_prefix,
            "remote_kernel_name": "python3",
        },
        remote={"rundir": "/nonexistent/run/x", "pid": 1, "pgid": 1},
        key="0" * 32,
        signature_scheme="hmac-sha256",
        started_at=time.time(),
        server_pid=999_999_999,
        local_ports=None,
    )
    registry.save(rec)
    listed = await call(jp_fetch, "sshpyk", "orphans")
    (entry,) = [k for k in listed["kernels"] if k["kernel_id"] == rec.kernel_id]
    assert not entry["reachable"] and "writable by group or others" in entry["error"], entry
    await call(jp_fetch, "sshpyk", "orphans", rec.kernel_id, method="DELETE", expect=502)
    assert registry.load(rec.kernel_id) is not None
    assert not marker.exists()
    registry.remove(rec.kernel_id)
