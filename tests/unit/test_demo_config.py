"""``sshpyk demo``'s texts and kernelspec, without starting its sshd: the sshd_config and
ssh_config it writes, path quoting, and the demo kernel's fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from sshpyk.demo import DEMO_DISPLAY, DEMO_KERNEL, DemoError, DemoSandbox, demo_kernelspec
from sshpyk.demo.config import (
    ALIAS,
    ENV_MARK,
    client_config,
    known_hosts_line,
    quote_path,
    sshd_config,
)
from sshpyk.model import validate

ROOT = Path("/home/u/.local/share/jupyter/sshpyk/demo")


def directives(text: str) -> list[tuple[str, str]]:
    """(keyword, rest) of each non-comment line, as sshd/ssh read them."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, rest = line.partition(" ")
            out.append((key, rest))
    return out


def test_sshd_config_is_loopback_key_only_and_local_forwarding_only():
    got = dict(directives(sshd_config(ROOT, 2222, "alice", as_root=False)))
    assert got["Port"] == "2222" and got["ListenAddress"] == "127.0.0.1"
    assert got["AllowUsers"] == "alice"
    assert got["PasswordAuthentication"] == "no" and got["KbdInteractiveAuthentication"] == "no"
    assert got["AuthenticationMethods"] == "publickey"
    assert got["AllowTcpForwarding"] == "local" and got["AllowStreamLocalForwarding"] == "local"
    assert got["GatewayPorts"] == "no" and got["PermitTunnel"] == "no"
    assert got["PermitUserRC"] == "no"  # nothing of the user's ~/.ssh runs
    assert got["MaxSessions"] == "100"  # every kernel of the host on one connection
    assert "PermitRootLogin" not in got


def test_sshd_config_paths_are_in_the_root_and_quoted():
    got = dict(directives(sshd_config(ROOT, 2222, "alice", as_root=False)))
    assert got["HostKey"] == f'"{ROOT}/ssh_host_ed25519_key"'
    assert got["PidFile"] == f'"{ROOT}/sshd.pid"'
    assert got["AuthorizedKeysFile"] == f'"{ROOT}/authorized_keys"'
    # how stop_sandbox finds every process of the sessions
    assert got["SetEnv"] == f'"{ENV_MARK}={ROOT}"'


def test_sshd_config_as_root_allows_its_key_login():
    got = dict(directives(sshd_config(ROOT, 2222, "root", as_root=True)))
    assert got["PermitRootLogin"] == "prohibit-password"


def test_client_config_reads_nothing_of_the_users():
    key = ROOT / "client_ed25519_key"
    text = client_config(ROOT, 2222, "alice", key)
    lines = directives(text)
    assert lines[0] == ("Host", ALIAS)
    got = dict(lines)
    assert got["HostName"] == "127.0.0.1" and got["Port"] == "2222" and got["User"] == "alice"
    assert got["IdentityFile"] == f'"{key}"' and got["IdentitiesOnly"] == "yes"
    assert got["IdentityAgent"] == "none"
    assert got["UserKnownHostsFile"] == f'"{ROOT}/known_hosts"'
    assert got["GlobalKnownHostsFile"] == "/dev/null"
    assert got["StrictHostKeyChecking"] == "yes" and got["BatchMode"] == "yes"
    assert f"ssh -F {ROOT}/ssh_config" in text


def test_known_hosts_pins_the_port():
    assert known_hosts_line(2222, "ssh-ed25519 AAAA") == "[127.0.0.1]:2222 ssh-ed25519 AAAA\n"


def test_quote_path():
    assert quote_path(Path("/a b/c")) == '"/a b/c"'
    assert quote_path("/x/100%", tokens=True) == '"/x/100%%"'  # ssh expands %-tokens there
    assert quote_path("/x/100%") == '"/x/100%"'
    for bad in ('/a"b', "/a\\b", "/a\nb", "/a\tb", "/a\x07b"):
        with pytest.raises(DemoError, match="unsupported character"):
            quote_path(bad)


def test_a_root_with_a_quote_is_refused_not_written():
    with pytest.raises(DemoError):
        sshd_config(Path('/tmp/a"b'), 2222, "alice", as_root=False)


def test_demo_kernelspec(tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text("Host sshpyk-demo\n")
    config.chmod(0o600)
    sandbox = DemoSandbox(
        root=tmp_path,
        ssh_config=config,
        alias=ALIAS,
        port=2222,
        sshd_pid=12345,
        remote_python_prefix="/opt/env",
    )
    spec = demo_kernelspec(sandbox)
    assert spec["kernel_name"] == DEMO_KERNEL == "ssh-demo"
    assert spec["display_name"] == DEMO_DISPLAY
    assert spec["ssh_host_alias"] == "sshpyk-demo" and spec["ssh_config"] == str(config)
    assert spec["remote_python_prefix"] == "/opt/env" and spec["remote_kernel_name"] == "python3"
    model = validate(spec)  # a valid kernelspec, as the store will write it
    assert model["ssh_config"] == str(config)
