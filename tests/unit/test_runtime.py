"""The server's runtime: found through the parent chain, the re-attach mailbox."""

from __future__ import annotations

from types import SimpleNamespace

from sshpyk.registry import Record
from sshpyk.runtime import SETTINGS_KEY, Runtime, default_runtime, runtime_of


def _record(kid: str) -> Record:
    return Record(kid, "spec", "Spec", {"ssh_host_alias": "h"}, {}, "k", "hmac-sha256", 0.0)


def test_a_provisioner_finds_its_servers_runtime_through_its_parents():
    rt = Runtime()
    server = SimpleNamespace(web_app=SimpleNamespace(settings={SETTINGS_KEY: rt}), parent=None)
    mkm = SimpleNamespace(parent=server)
    km = SimpleNamespace(parent=mkm)
    prov = SimpleNamespace(parent=km)
    assert runtime_of(prov) is rt


def test_without_a_server_the_process_default_is_used():
    km = SimpleNamespace(parent=None)
    assert runtime_of(SimpleNamespace(parent=km)) is default_runtime()
    assert runtime_of(None) is default_runtime()
    # a web_app without our key (another server-like object) is not ours either
    other = SimpleNamespace(web_app=SimpleNamespace(settings={}), parent=None)
    assert runtime_of(SimpleNamespace(parent=other)) is default_runtime()


def test_a_parent_cycle_ends_the_walk():
    a = SimpleNamespace(parent=None)
    b = SimpleNamespace(parent=a)
    a.parent = b
    assert runtime_of(a) is default_runtime()


def test_two_servers_have_two_runtimes():
    one, two = Runtime(), Runtime()
    s1 = SimpleNamespace(web_app=SimpleNamespace(settings={SETTINGS_KEY: one}), parent=None)
    s2 = SimpleNamespace(web_app=SimpleNamespace(settings={SETTINGS_KEY: two}), parent=None)
    assert runtime_of(SimpleNamespace(parent=s1)) is one
    assert runtime_of(SimpleNamespace(parent=s2)) is two
    assert one.masters is not two.masters and one.mounts is not two.mounts


def test_the_attach_mailbox_is_read_before_launch_and_taken_once():
    rt = Runtime()
    rec = _record("k1")
    rt.expect_attach("k1", rec)
    assert rt.attach_pending("k1") is rec  # pre_launch reads the key
    assert rt.attach_pending("k1") is rec  # reading does not take it
    assert rt.take_attach("k1") is rec
    # a restart replays the launch: it must not take the kernel up again
    assert rt.take_attach("k1") is None
    assert rt.attach_pending("k1") is None


def test_a_cancelled_attach_is_gone():
    rt = Runtime()
    rt.expect_attach("k2", _record("k2"))
    rt.cancel_attach("k2")
    assert rt.take_attach("k2") is None
    rt.cancel_attach("never-there")  # harmless


def test_live_kernels_are_held_weakly():
    rt = Runtime()

    class Prov:
        pass

    p = Prov()
    rt.kernels["k"] = p
    assert rt.kernels["k"] is p
    del p
    assert "k" not in rt.kernels  # a provisioner jupyter_client dropped is not listed


def test_orphan_requests_belong_to_one_server():
    one, two = Runtime(), Runtime()
    one.orphan_requests.add("k")
    assert "k" not in two.orphan_requests
