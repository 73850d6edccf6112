"""``sshpyk.sshconfig``: the Host aliases a config offers (read from the files, Include
followed) and what ``ssh -G`` says about one (the local ssh binary, which reads its config
and touches no network)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from sshpyk.model import InvalidField
from sshpyk.sshconfig import config_hosts, parse_ssh_g, resolve, resolve_many


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A private HOME with an empty ~/.ssh: relative Includes and the default config live
    there."""
    h = tmp_path / "home"
    (h / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(h))
    return h


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


# ---- Host aliases from the files -----------------------------------------------------------


def test_hosts_in_file_order_without_duplicates_or_patterns(home):
    cfg = write(
        home / "cfg",
        "# a comment naming Host fake\n"
        "Host alpha beta\n"
        "  HostName 10.0.0.1\n"
        "\n"
        "host gamma\n"  # keywords are case-insensitive
        "Host=delta\n"  # key=value form
        "Host *.example.org !bad alpha\n"  # patterns and negations left out, alpha once
        "Host web-? db*\n"
        '  Host "quoted"\n'
        "Match host epsilon\n",
    )
    assert config_hosts(cfg) == ["alpha", "beta", "gamma", "delta", "quoted"]


def test_aliases_ssh_could_misread_are_left_out(home):
    cfg = write(home / "cfg", "Host ok -oProxyCommand=touch;x $(id) good.host\nHost 'bad quote\n")
    assert config_hosts(cfg) == ["ok", "good.host"]


def test_the_default_is_the_users_own_config(home):
    write(home / ".ssh" / "config", "Host mine\n")
    assert config_hosts() == ["mine"]
    assert config_hosts(None) == ["mine"]


def test_no_config_at_all_offers_no_host(home):
    assert config_hosts() == []
    assert config_hosts(home / "missing") == []


def test_includes_relative_to_dot_ssh_absolute_and_globbed(home, tmp_path):
    write(home / ".ssh" / "conf.d" / "b.conf", "Host from-b\n")
    write(home / ".ssh" / "conf.d" / "a.conf", "Host from-a\n")
    write(tmp_path / "abs.conf", "Host from-abs\n")
    cfg = write(
        home / "cfg",
        f"Host first\nInclude conf.d/*.conf {tmp_path / 'abs.conf'}\nInclude missing.conf\n"
        "Host last\n",
    )
    assert config_hosts(cfg) == ["first", "from-a", "from-b", "from-abs", "last"]


def test_an_include_of_home_with_a_tilde(home):
    write(home / "extra.conf", "Host tilde\n")
    cfg = write(home / "cfg", "Include ~/extra.conf\n")
    assert config_hosts(cfg) == ["tilde"]


def test_an_include_loop_ends(home):
    cfg = write(home / ".ssh" / "loop.conf", "Host looped\nInclude loop.conf\n")
    assert config_hosts(cfg) == ["looped"]


def test_an_unsafe_include_is_left_out_but_an_unsafe_config_is_refused(home):
    write(home / ".ssh" / "open.conf", "Host from-open\n", mode=0o666)
    cfg = write(home / "cfg", "Host safe\nInclude open.conf\n")
    assert config_hosts(cfg) == ["safe"]
    cfg.chmod(0o664)
    with pytest.raises(InvalidField, match="writable by group or others"):
        config_hosts(cfg)


def test_a_fifo_as_config_is_refused_without_waiting(home):
    fifo = home / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InvalidField, match="not a regular file"):
        config_hosts(fifo)


# ---- ssh -G -------------------------------------------------------------------------------


def test_parse_ssh_g_lowercases_keys_and_keeps_repeats():
    text = (
        "user alice\nhostname h.example.org\nport 2222\nidentityfile ~/.ssh/id_a\n"
        "identityfile ~/.ssh/id_b\nProxyJump none\nsetenv A=1 B=2\n"
    )
    opts = parse_ssh_g(text)
    assert opts["user"] == ["alice"] and opts["port"] == ["2222"]
    assert opts["identityfile"] == ["~/.ssh/id_a", "~/.ssh/id_b"]
    assert opts["proxyjump"] == ["none"]
    assert opts["setenv"] == ["A=1 B=2"]
    assert parse_ssh_g("") == {}


def test_resolve_with_the_real_ssh(home):
    cfg = write(
        home / "cfg",
        "Host target\n  HostName 10.200.9.9\n  User bob\n  Port 2200\n  ProxyJump hop\n"
        "Host hop\n  HostName 10.200.9.1\n",
    )
    got = asyncio.run(resolve("target", config=str(cfg)))
    assert got == {
        "alias": "target",
        "hostname": "10.200.9.9",
        "user": "bob",
        "port": 2200,
        "proxyjump": "hop",
    }
    hop = asyncio.run(resolve("hop", config=str(cfg)))
    assert hop["hostname"] == "10.200.9.1" and hop["port"] == 22 and hop["proxyjump"] is None


def test_resolve_reports_a_broken_config_without_quoting_it(home):
    cfg = write(home / "cfg", "Host target\n  NoSuchOption s3cr3t-value\n")
    got = asyncio.run(resolve("target", config=str(cfg)))
    assert set(got) == {"alias", "error"} and got["alias"] == "target"
    assert "line 2" in got["error"]
    assert "s3cr3t" not in got["error"]


def fake_ssh(tmp_path: Path, body: str) -> str:
    exe = tmp_path / "fake-ssh"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(0o755)
    return str(exe)


def test_resolve_passes_the_alias_after_double_dash(tmp_path):
    # the fake prints what it was given, so the argv is what the test sees
    ssh = fake_ssh(tmp_path, 'echo "hostname $*"\necho "user u"\necho "port 7"\n')
    got = asyncio.run(resolve("h1", ssh=ssh, config="/cfg"))
    assert got == {"alias": "h1", "hostname": "-F /cfg -G -- h1", "user": "u", "port": 7,
                   "proxyjump": None}  # fmt: skip
    got = asyncio.run(resolve("h2", ssh=ssh))
    assert got["hostname"] == "-G -- h2"


def test_resolve_defaults_when_ssh_says_little(tmp_path):
    ssh = fake_ssh(tmp_path, "true\n")
    got = asyncio.run(resolve("bare", ssh=ssh))
    assert got == {"alias": "bare", "hostname": "bare", "user": "", "port": 22, "proxyjump": None}


def test_resolve_many_keeps_the_order(tmp_path):
    ssh = fake_ssh(tmp_path, 'for a; do last=$a; done\necho "hostname host-of-$last"\n')
    aliases = [f"a{i}" for i in range(12)]
    got = asyncio.run(resolve_many(aliases, ssh=ssh))
    assert [g["alias"] for g in got] == aliases
    assert [g["hostname"] for g in got] == [f"host-of-{a}" for a in aliases]


def test_resolve_with_a_failing_ssh_names_no_output(tmp_path):
    ssh = fake_ssh(tmp_path, "echo 'secret line from a config' >&2\nexit 255\n")
    got = asyncio.run(resolve("x", ssh=ssh))
    assert got == {"alias": "x", "error": "ssh could not read the configuration (exit 255)"}
