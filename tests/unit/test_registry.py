"""``sshpyk.registry``: the records of running SSH kernels in a private runtime dir (each
test has its own, see ``tests/unit/conftest.py``), their modes, the re-attach claim, and
what happens to files that are not records."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from dataclasses import asdict

import pytest

from sshpyk import registry
from sshpyk.errors import SSHPykError
from sshpyk.registry import Busy, Record


def record(kernel_id="k1", started_at=1000.0, **kw) -> Record:
    return Record(
        kernel_id=kernel_id,
        kernelspec="ssh-remote",
        display_name="SSH remote",
        config={"ssh_host_alias": "remote", "remote_python_prefix": "/opt/env"},
        remote={"pid": 4242, "pgid": 4242, "rundir": "~/.sshpyk/run/x"},
        key="secret-hmac-key",
        signature_scheme="hmac-sha256",
        started_at=started_at,
        **kw,
    )


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def dead_pid() -> int:
    """A pid that ran and is gone (waited for)."""
    p = subprocess.Popen([sys.executable, "-c", ""])
    p.wait()
    return p.pid


def test_records_live_in_a_private_dir_of_the_runtime_dir(jupyter_dirs):
    d = registry.directory()
    assert d == jupyter_dirs / "sshpyk"
    assert d.is_dir() and mode(d) == 0o700


def test_a_too_open_registry_dir_is_made_private_again(jupyter_dirs):
    (jupyter_dirs / "sshpyk").mkdir(parents=True, mode=0o755)
    os.chmod(jupyter_dirs / "sshpyk", 0o755)  # noqa: S103  (too open on purpose)
    assert mode(registry.directory()) == 0o700


def test_a_symlink_in_place_of_the_dir_is_refused(jupyter_dirs, tmp_path):
    jupyter_dirs.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (jupyter_dirs / "sshpyk").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SSHPykError, match="not a directory owned by you"):
        registry.save(record())
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_save_load_round_trip_with_a_private_file():
    rec = record(local_ports=[1, 2, 3, 4, 5])
    registry.save(rec)
    path = registry.directory() / "k1.json"
    assert mode(path) == 0o600  # it holds the HMAC key
    assert json.loads(path.read_text())["key"] == "secret-hmac-key"
    back = registry.load("k1")
    assert back == rec and back is not rec
    assert back.server_pid == os.getpid() and back.server_nonce == registry.SERVER_NONCE
    # nothing else is left in the dir (the temp file was renamed into place)
    assert sorted(p.name for p in registry.directory().iterdir()) == ["k1.json"]


def test_save_replaces_the_record_and_keeps_its_mode():
    registry.save(record())
    os.chmod(registry.directory() / "k1.json", 0o600)
    rec = record(local_ports=[9])
    rec.remote["pid"] = 5151
    registry.save(rec)
    assert registry.load("k1").remote["pid"] == 5151
    assert mode(registry.directory() / "k1.json") == 0o600


def test_a_failed_save_leaves_the_old_record_and_no_temp_file():
    registry.save(record())
    bad = record()
    bad.config = {"ssh_host_alias": "remote", "oops": {1, 2}}  # json cannot write a set
    with pytest.raises(TypeError):
        registry.save(bad)
    assert sorted(p.name for p in registry.directory().iterdir()) == ["k1.json"]
    assert registry.load("k1") == record()


def test_load_of_an_unknown_kernel_is_none():
    assert registry.load("nobody") is None


@pytest.mark.parametrize("kid", ["", "a/b", "../k1", ".hidden", "a\0b"])
def test_kernel_ids_that_are_no_plain_file_name_are_refused(kid):
    with pytest.raises(SSHPykError, match="invalid kernel id"):
        registry.load(kid)
    with pytest.raises(SSHPykError, match="invalid kernel id"):
        registry.save(record(kernel_id=kid))
    with pytest.raises(SSHPykError, match="invalid kernel id"):
        registry.remove(kid)


def test_remove_takes_the_record_and_its_claim_file_and_is_idempotent():
    registry.save(record())
    with registry.claim("k1"):
        pass
    assert (registry.directory() / "k1.claim").exists()
    registry.remove("k1")
    assert list(registry.directory().iterdir()) == []
    registry.remove("k1")  # nothing left: no error


def test_abandon_keeps_the_record_as_an_orphan():
    registry.save(record())
    assert not registry.load("k1").orphan
    registry.abandon("k1")
    rec = registry.load("k1")
    assert rec.server_pid == -1 and rec.orphan
    assert rec.key == "secret-hmac-key"  # re-attaching still needs it
    registry.abandon("nobody")  # no record: nothing happens
    assert registry.load("nobody") is None


# ---- who owns a record ---------------------------------------------------------------------


def test_our_own_record_is_no_orphan():
    assert not record().orphan


def test_same_pid_but_another_nonce_is_an_orphan():
    """A container restarts Jupyter with the same pid: the old server's kernels are orphans."""
    assert record(server_nonce="0123456789abcdef").orphan


def test_a_record_from_before_nonces_with_our_pid_is_an_orphan():
    data = asdict(record())
    del data["server_nonce"]
    (registry.directory() / "k1.json").write_text(json.dumps(data))
    rec = registry.load("k1")
    assert rec.server_nonce == "" and rec.orphan


def test_a_live_other_server_owns_its_record():
    assert not record(server_pid=os.getppid(), server_nonce="other").orphan


def test_a_dead_servers_record_is_an_orphan():
    assert record(server_pid=dead_pid(), server_nonce="other").orphan


def test_a_zombie_server_is_dead():
    p = subprocess.Popen([sys.executable, "-c", ""])
    try:
        deadline = time.monotonic() + 10
        while "State:\tZ" not in open(f"/proc/{p.pid}/status").read():  # noqa: SIM115
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.01)
        assert record(server_pid=p.pid, server_nonce="other").orphan
    finally:
        p.wait()


def test_public_view_has_no_key():
    pub = record().public()
    assert "key" not in pub and "secret-hmac-key" not in json.dumps(pub)
    assert pub["host_alias"] == "remote" and pub["orphan"] is False
    assert pub["kernel_id"] == "k1" and pub["remote"]["pid"] == 4242


# ---- the claim ------------------------------------------------------------------------------


def test_a_second_claim_is_busy_until_the_first_ends():
    registry.save(record())
    with registry.claim("k1"):
        with (
            pytest.raises(Busy, match="being re-attached by another request"),
            registry.claim("k1"),
        ):
            pass
        assert mode(registry.directory() / "k1.claim") == 0o600
    with registry.claim("k1"):  # released
        pass


def test_busy_is_an_sshpyk_error_of_kind_busy():
    assert issubclass(Busy, SSHPykError) and Busy.kind == "busy"


def test_another_process_holding_the_claim_makes_us_busy():
    registry.save(record())
    code = (
        "import sys; from sshpyk import registry\n"
        "with registry.claim('k1'):\n"
        "    print('held', flush=True); sys.stdin.readline()\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert p.stdout.readline() == "held\n"
        with pytest.raises(Busy), registry.claim("k1"):
            pass
    finally:
        p.stdin.close()
        assert p.wait(10) == 0
    with registry.claim("k1"):  # the holder is gone, and its flock with it
        pass


def test_claims_of_different_kernels_are_independent():
    with registry.claim("k1"), registry.claim("k2"):
        pass


def test_a_symlinked_claim_file_is_never_followed(tmp_path):
    target = tmp_path / "victim"
    target.write_text("keep")
    (registry.directory() / "k1.claim").symlink_to(target)
    with pytest.raises(OSError), registry.claim("k1"):
        pass
    assert target.read_text() == "keep"


# ---- files that are not records -------------------------------------------------------------


def test_all_records_are_sorted_by_start_and_bad_files_are_named():
    registry.save(record("late", started_at=3.0))
    registry.save(record("early", started_at=1.0))
    registry.save(record("middle", started_at=2.0))
    d = registry.directory()
    (d / "garbage.json").write_text("{not json")
    (d / "list.json").write_text("[1, 2]")
    (d / "partial.json").write_text(json.dumps({"kernel_id": "partial"}))
    (d / "extra.json").write_text(json.dumps({**asdict(record("extra")), "colour": "blue"}))
    (d / "empty.json").write_text("")
    (d / "notes.txt").write_text("not a record, not a .json")
    records, bad = registry.all_records()
    assert [r.kernel_id for r in records] == ["early", "middle", "late"]
    assert bad == ["empty.json", "extra.json", "garbage.json", "list.json", "partial.json"]


def test_an_unreadable_record_is_named_not_fatal():
    registry.save(record("good"))
    (registry.directory() / "dir.json").mkdir()  # reading it fails with an OSError
    records, bad = registry.all_records()
    assert [r.kernel_id for r in records] == ["good"] and bad == ["dir.json"]


def test_loading_a_corrupt_record_raises_rather_than_inventing_one():
    (registry.directory() / "k1.json").write_text('{"kernel_id": "k1"')
    with pytest.raises(ValueError):
        registry.load("k1")
    (registry.directory() / "k1.json").write_text('"just a string"')
    with pytest.raises(TypeError):
        registry.load("k1")
