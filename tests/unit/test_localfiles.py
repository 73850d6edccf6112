"""``sshpyk.localfiles``: an ssh config is a program in disguise, so only a small regular
file that the user (or root) owns and nobody else can change is handed to ssh or read."""

from __future__ import annotations

import os
import time

import pytest

from sshpyk import localfiles
from sshpyk.localfiles import MAX_CONFIG_BYTES, check_ssh_config, read_ssh_config
from sshpyk.model import InvalidField


@pytest.fixture
def config(tmp_path):
    p = tmp_path / "ssh_config"
    p.write_text("Host remote\n  HostName 10.200.0.2\n")
    p.chmod(0o600)
    return p


def refused(path, words: str) -> None:
    with pytest.raises(InvalidField) as e:
        check_ssh_config("ssh_config", str(path))
    assert e.value.field == "ssh_config" and words in e.value.message, e.value.message
    with pytest.raises(InvalidField) as e:
        read_ssh_config(str(path))
    assert e.value.field == "ssh_config"


def test_a_private_regular_file_passes_and_reads(config):
    check_ssh_config("ssh_config", str(config))
    assert read_ssh_config(str(config)) == "Host remote\n  HostName 10.200.0.2\n"


@pytest.mark.parametrize("mode", [0o644, 0o400, 0o700])
def test_readable_by_others_is_fine(config, mode):
    config.chmod(mode)
    check_ssh_config("ssh_config", str(config))


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666, 0o660])
def test_writable_by_group_or_others_is_refused(config, mode):
    config.chmod(mode)
    refused(config, "writable by group or others (chmod go-w it)")


def test_the_field_name_is_the_callers(config):
    config.chmod(0o666)
    with pytest.raises(InvalidField) as e:
        check_ssh_config("ssh_config_of_remote", str(config))
    assert e.value.field == "ssh_config_of_remote"


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(InvalidField, match="does not exist"):
        check_ssh_config("ssh_config", str(tmp_path / "nope"))
    with pytest.raises(InvalidField, match="cannot be read"):
        read_ssh_config(str(tmp_path / "nope"))


def test_a_fifo_is_refused_at_once(tmp_path):
    """Opening a FIFO for reading would wait for a writer forever: neither check may."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    t0 = time.monotonic()
    refused(fifo, "is not a regular file")
    assert time.monotonic() - t0 < 2


@pytest.mark.parametrize("dev", ["/dev/null", "/dev/zero"])
def test_a_device_is_refused(dev):
    refused(dev, "is not a regular file")


def test_a_directory_is_refused(tmp_path):
    refused(tmp_path, "is not a regular file")


def test_too_big_is_refused(config):
    os.truncate(config, MAX_CONFIG_BYTES + 1)
    refused(config, "is larger than 1024 KiB")
    os.truncate(config, MAX_CONFIG_BYTES)
    check_ssh_config("ssh_config", str(config))
    assert len(read_ssh_config(str(config))) == MAX_CONFIG_BYTES


def test_a_file_of_another_user_is_refused(config, monkeypatch):
    """Owned by neither us nor root.  As root the file is given away; otherwise we pretend to
    be another user (the check compares the owner with ``os.getuid()``)."""
    if os.getuid() == 0:
        os.chown(config, 65534, -1)
    else:
        me = os.getuid()
        monkeypatch.setattr(localfiles.os, "getuid", lambda: me + 1)
    refused(config, "is owned by another user")


def test_root_owned_files_are_trusted(config, monkeypatch):
    if os.getuid() != 0:
        monkeypatch.setattr(localfiles.os, "stat", _owned_by_root(os.stat))
        monkeypatch.setattr(localfiles.os, "fstat", _owned_by_root(os.fstat))
    else:
        os.chown(config, 0, -1)
        monkeypatch.setattr(localfiles.os, "getuid", lambda: 4242)  # we are someone else
    check_ssh_config("ssh_config", str(config))
    assert read_ssh_config(str(config)).startswith("Host remote")


def _owned_by_root(real):
    def fake(*args, **kw):
        st = real(*args, **kw)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, 0, *st[5:]))

    return fake


def test_a_symlink_counts_as_its_target(config, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(config)
    check_ssh_config("ssh_config", str(link))
    assert read_ssh_config(str(link)).startswith("Host remote")
    config.chmod(0o666)
    refused(link, "writable by group or others")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    with pytest.raises(InvalidField, match="does not exist"):
        check_ssh_config("ssh_config", str(dangling))


def test_the_read_checks_the_file_it_opened(config, monkeypatch):
    """A file swapped in after a check cannot get past: the read looks at its own fd."""
    check_ssh_config("ssh_config", str(config))
    config.chmod(0o666)  # "swapped" between the check and the read
    with pytest.raises(InvalidField, match="writable by group or others"):
        read_ssh_config(str(config))


def test_bytes_that_are_no_utf8_are_replaced_not_fatal(config):
    config.write_bytes(b"Host caf\xe9\n")
    assert read_ssh_config(str(config)) == "Host caf\ufffd\n"
