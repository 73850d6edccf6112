"""SSHFS mounts: the confined SFTP server (attacked with raw protocol requests), and
mounts on the real test hosts through kernels, restarts, faults and shutdown.  The attacks
run against both path resolvers (``[openat2]``, ``[walk]``: ``sftp_wire.confinement``)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import time
from pathlib import Path

import pytest
import sftp_wire
from helpers import (
    local_servers,
    remote_mounts,
    remote_procs,
    run_code,
    sshfs_procs,
    start,
    wait_until,
)
from sftp_wire import Client, run_server, s

from harness.topology import run
from sshpyk import sftp_server as P
from sshpyk.checks import Checker
from sshpyk.control_dir import control_dir
from sshpyk.model import InvalidField, format_mount, parse_mount
from sshpyk.mounts import MountError, Mounts
from sshpyk.transport import Master, Target

SECRET = b"local secret outside the share"
confinement = sftp_wire.confinement  # the fixture: [openat2] and [walk]


@pytest.fixture
def tree(tmp_path):
    """share/ (what is mounted) next to outside/ (what must stay unreachable)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    os.chmod(outside / "secret.txt", 0o600)
    share = tmp_path / "share"
    (share / "sub").mkdir(parents=True)
    (share / "inner.txt").write_bytes(b"inner")
    (share / "abs_link").symlink_to(outside / "secret.txt")
    (share / "rel_link").symlink_to("../outside/secret.txt")
    (share / "sub" / "deep_link").symlink_to("../../outside/secret.txt")
    (share / "dir_link").symlink_to(outside)
    (share / "root_link").symlink_to("/")
    return share, outside


# ---- the SFTP server against raw requests ---------------------------------------------------

ESCAPES = [
    "../outside/secret.txt",
    "/../outside/secret.txt",
    "sub/../../outside/secret.txt",
    "abs_link",
    "rel_link",
    "sub/deep_link",
    "dir_link/secret.txt",
    "root_link/../outside/secret.txt",
    "/root_link/../../outside/secret.txt",
]


def test_reads_never_leave_the_share(tree, confinement):
    share, outside = tree
    c = Client(str(share))
    try:
        assert c.read_all("inner.txt") == b"inner"
        assert c.read_all("/sub/../inner.txt") == b"inner"
        # the real absolute path of the secret means share/<that path>: not there
        assert c.read_all(str(outside / "secret.txt")) == P.FX_NO_SUCH_FILE
        for path in ESCAPES:
            got = c.read_all(path)
            assert got in (P.FX_NO_SUCH_FILE, P.FX_PERMISSION_DENIED), (path, got)
        # ".." at the top is the top, as in a chroot
        assert sorted(c.listdir("..")) == sorted(c.listdir("/"))
        if confinement == "openat2":
            assert b"inner.txt" in c.listdir("root_link")  # "/" is the share itself
            assert c.listdir("dir_link") == P.FX_NO_SUCH_FILE  # share/<outside's path>
        else:  # the walk follows no link at all
            assert c.listdir("root_link") == P.FX_PERMISSION_DENIED
            assert c.listdir("dir_link") == P.FX_PERMISSION_DENIED
        assert c.realpath("../../..") == b"/"
        assert c.realpath("sub/../../x") == b"/x"
    finally:
        assert c.close() == 0


def test_writes_renames_and_links_never_leave_the_share(tree, confinement):
    share, outside = tree
    before = {p.name: p.stat() for p in outside.iterdir()}
    c = Client(str(share))
    try:
        assert c.write_file("../outside/new.txt", b"x") != P.FX_OK
        assert c.write_file("dir_link/new.txt", b"x") != P.FX_OK
        assert c.write_file("abs_link", b"overwritten") != P.FX_OK or (
            (share / "tmp").exists()  # IN_ROOT: the link's absolute target lands in the share
        )
        # ".." at the top is the top: this lands inside the share, as in a chroot
        c.status_of(P.MKDIR, s("../evil"), struct.pack(">I", 0))
        assert not (share.parent / "evil").exists() and (share / "evil").is_dir()
        assert c.status_of(P.RENAME, s("inner.txt"), s("../outside/moved")) != P.FX_OK
        assert (
            c.status_of(
                P.EXTENDED, s("posix-rename@openssh.com"), s("inner.txt"), s("dir_link/moved")
            )
            != P.FX_OK
        )
        assert (
            c.status_of(
                P.EXTENDED, s("hardlink@openssh.com"), s("../outside/secret.txt"), s("stolen")
            )
            != P.FX_OK
        )
        assert c.status_of(P.REMOVE, s("../outside/secret.txt")) != P.FX_OK
        assert c.status_of(P.RMDIR, s("../outside")) != P.FX_OK
        chmod = struct.pack(">II", P.ATTR_PERMISSIONS, 0o777)
        assert c.status_of(P.SETSTAT, s("../outside/secret.txt"), chmod) != P.FX_OK
        assert c.status_of(P.SETSTAT, s("abs_link"), chmod) != P.FX_OK
        # a link made by the remote side: its text is free, following it is confined
        target = str(outside / "secret.txt")
        assert c.status_of(P.SYMLINK, s(target), s("made_link")) == P.FX_OK
        followed = P.FX_NO_SUCH_FILE if confinement == "openat2" else P.FX_PERMISSION_DENIED
        assert c.read_all("made_link") == followed
        # NUL bytes cannot cut a path short
        assert c.read_all(b"inner.txt\0../outside/secret.txt") != b"inner"
        assert c.write_file("inside.txt", b"ok") == P.FX_OK
    finally:
        assert c.close() == 0
    assert (share / "inside.txt").read_bytes() == b"ok"
    assert (share / "inner.txt").read_bytes() == b"inner"
    assert not (share / "stolen").exists()
    after = {p.name: p.stat() for p in outside.iterdir()}
    assert after.keys() == before.keys()
    for name, st in before.items():
        assert (after[name].st_mode, after[name].st_mtime_ns) == (st.st_mode, st.st_mtime_ns)
    assert (outside / "secret.txt").read_bytes() == SECRET


def test_special_files_and_extensions(tree, confinement):
    share, _ = tree
    os.mkfifo(share / "fifo")
    c = Client(str(share))
    try:
        t0 = time.monotonic()
        assert c.open("fifo") == P.FX_PERMISSION_DENIED  # and it did not hang
        assert time.monotonic() - t0 < 2
        rkind, r = c.request(P.EXTENDED, s("statvfs@openssh.com"), s("/"))
        assert rkind == P.EXTENDED_REPLY and r.u64() > 0
        assert c.status_of(P.EXTENDED, s("no-such@example.com")) == P.FX_OP_UNSUPPORTED
        assert c.status_of(99) == P.FX_OP_UNSUPPORTED
        name = "ünïcode ✓.txt"
        assert c.write_file(name, b"u") == P.FX_OK
        assert (share / name).read_bytes() == b"u"
    finally:
        assert c.close() == 0


def test_anything_but_sftp_ends_the_server(tree, confinement):
    share, _ = tree
    proc = run_server(str(share), input=b"GET / HTTP/1.0\r\n\r\n")
    assert proc.returncode == 1 and proc.stdout == b""
    assert b"out of range" in proc.stderr or b"INIT" in proc.stderr
    # noise before sshfs's INIT (shell start-up files) is skipped only when asked
    proc = run_server(
        "--skip-noise",
        str(share),
        input=b"Welcome to the host!\n" + struct.pack(">IBI", 5, P.INIT, 3),
    )
    assert proc.returncode == 0 and proc.stdout[4] == P.VERSION


# ---- mounts on the test hosts ---------------------------------------------------------------


def listening_beyond_loopback() -> set[str]:
    addrs = set()
    for ln in run(["ss", "-Hltnu"]).stdout.splitlines():
        local = ln.split()[4]
        if not (local.startswith("127.") or local.startswith("[::1]")):
            addrs.add(local)
    return addrs


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


async def test_kernel_sees_the_share_both_ways_across_restart_and_shutdown(
    netns_hosts, specs, managers, tree, mountpoint, confinement
):
    th = netns_hosts
    share, _ = tree
    keys = [Path.home() / ".ssh" / "authorized_keys"]
    # no credential of any kind is made for a mount: no new file where ssh keeps them
    private = [Path.home() / ".ssh", control_dir()]
    files_before = {p for d in private if d.exists() for p in d.iterdir()}
    remote_keys = th.ssh("remote", "sha256sum ~/.ssh/authorized_keys").stdout
    before = ([digest(k) for k in keys], listening_beyond_loopback())
    spec = specs(
        "ssh-mount",
        mount_local_on_remote=[{"local_path": str(share), "remote_path": f"~/{mountpoint}"}],
    )
    km = managers(spec)
    kc = await start(km)
    mp = f"/home/{th.user}/{mountpoint}"
    # the kernel may use the mount from its first cell on; both directions work
    out, reply = await run_code(kc, f"print(open('{mp}/inner.txt').read())")
    assert reply["status"] == "ok" and out.strip() == "inner"
    await run_code(kc, f"open('{mp}/from_remote.txt', 'w').write('hello from remote')")
    assert (share / "from_remote.txt").read_text() == "hello from remote"
    (share / "from_local.txt").write_text("hello from local")
    out, _ = await run_code(kc, f"print(open('{mp}/from_local.txt').read())")
    assert out.strip() == "hello from local"
    # escapes through the mount: the local server runs as root here and the secret is
    # root-only, so any read that got out would succeed
    for name in ("abs_link", "rel_link", "sub/deep_link", "dir_link/secret.txt"):
        out, reply = await run_code(kc, f"print(open('{mp}/{name}').read())")
        assert reply["status"] == "error" and "secret" not in out, (name, out)
    out, _ = await run_code(kc, f"import os; print(sorted(os.listdir('{mp}/root_link')))")
    assert "secret.txt" not in out
    # openat2 follows it inside the share ("/" is the share); the walk refuses it
    assert ("inner.txt" in out) == (confinement == "openat2"), out
    # nothing new listens beyond loopback, no key was added anywhere
    assert listening_beyond_loopback() <= before[1]
    assert [digest(k) for k in keys] == before[0]
    assert th.ssh("remote", "sha256sum ~/.ssh/authorized_keys").stdout == remote_keys
    files_now = {p for d in private if d.exists() for p in d.iterdir()}
    assert {p for p in files_now - files_before if not p.name.startswith("cm-")} == set()
    mount = km.provisioner.mounts.items[0]
    assert km.provisioner.status()["mounts"][0]["state"] == "mounted"
    sshfs_before = sshfs_procs(th)
    # restart: same mount, same sshfs
    await km.restart_kernel()
    await kc.wait_for_ready(timeout=30)
    out, _ = await run_code(kc, f"print(open('{mp}/from_local.txt').read())")
    assert out.strip() == "hello from local"
    assert mount.mounts == 1 and sshfs_procs(th) == sshfs_before
    assert remote_mounts(th) == [mp]
    kc.stop_channels()
    await km.shutdown_kernel()
    # shutdown: unmounted, no sshfs or helper left on the host, no local server left
    assert remote_mounts(th) == []
    assert await wait_until(lambda: _async(not sshfs_procs(th)), 5), sshfs_procs(th)
    assert local_servers(share) == []
    assert th.ssh("remote", f"ls -A {mp} | wc -l").stdout.strip() == "0"
    assert (share / "from_remote.txt").exists()  # the data stays, of course


async def _async(value):
    return value


@pytest.mark.parametrize(
    ("case", "words", "check_words"),
    [
        ("local_missing", "does not exist", "do not exist"),
        ("not_empty", "is not empty", "not empty"),
        ("no_sshfs", "sshfs not found", "install sshfs"),
        ("not_writable", "not writable", "not writable"),
    ],
)
async def test_mount_problems_stop_the_launch_with_a_clear_error(
    netns_hosts, specs, managers, tree, mountpoint, case, words, check_words
):
    th = netns_hosts
    share, _ = tree
    mount = {"local_path": str(share), "remote_path": f"~/{mountpoint}"}
    extra = {}
    if case == "local_missing":
        mount["local_path"] = str(share / "nope")
    elif case == "not_empty":
        th.ssh("remote", f"mkdir -p ~/{mountpoint} && touch ~/{mountpoint}/precious")
    elif case == "no_sshfs":
        extra["remote_sshfs"] = "/nonexistent/sshfs"
    elif case == "not_writable":
        th.ssh("remote", f"mkdir -p ~/{mountpoint} && chmod 500 ~/{mountpoint}")
    model = {
        "ssh_host_alias": "remote",
        "ssh_config": str(th.ssh_config),
        "remote_python_prefix": th.remote_python_prefix,
        "remote_kernel_name": "python3",
        "mount_local_on_remote": [mount],
        **extra,
    }
    # the checks say it before any launch ...
    results = {c.id: c for c in await Checker(timeout=20).check(model)}
    assert results["sshfs"].status == "fail"
    assert check_words in f"{results['sshfs'].value} {results['sshfs'].hint}"
    # ... and the launch refuses to start the kernel without its mount
    km = managers(specs("ssh-badmount", mount_local_on_remote=[mount], **extra))
    with pytest.raises(MountError, match=words):
        await km.start_kernel()
    assert [p for p in remote_procs(th) if "ipykernel" in p] == []
    assert sshfs_procs(th) == [] and remote_mounts(th) == []
    assert local_servers(share) == []
    if case == "not_empty":
        assert th.ssh("remote", f"ls ~/{mountpoint}").stdout.split() == ["precious"]


async def test_an_optional_mount_that_fails_does_not_stop_the_kernel(
    netns_hosts, specs, managers, tree, mountpoint
):
    share, _ = tree
    mounts = [
        {"local_path": str(share / "nope"), "remote_path": f"~/{mountpoint}", "optional": True}
    ]
    km = managers(specs("ssh-optmount", mount_local_on_remote=mounts))
    kc = await start(km)
    _, reply = await run_code(kc, "1")
    assert reply["status"] == "ok"
    status = km.provisioner.status()["mounts"][0]
    assert status["state"] == "failed" and "does not exist" in status["error"]
    kc.stop_channels()
    await km.shutdown_kernel()


async def _mounted(th, mountpoint, share, tag: str) -> bool:
    (share / "probe.txt").write_text(tag)
    out = await asyncio.to_thread(th.ssh, "remote", f"cat ~/{mountpoint}/probe.txt", timeout=3)
    return out.returncode == 0 and out.stdout == tag


async def test_mount_comes_back_after_the_link_and_the_master_die(
    netns_hosts, tree, mountpoint, faults
):
    th = netns_hosts
    share, _ = tree
    master = Master.for_target(Target("remote", "ssh", str(th.ssh_config)))
    await master.ensure(10)
    mounts = Mounts(
        master,
        th.remote_python_prefix,
        None,
        [{"local_path": str(share), "remote_path": f"~/{mountpoint}"}],
    )
    await mounts.start(timeout=20)
    mount = mounts.items[0]
    try:
        assert await _mounted(th, mountpoint, share, "before")
        # a short cut: the connection survives, so does the mount, untouched
        faults.cut("remote")
        await asyncio.sleep(3)
        faults.restore("remote")
        assert await wait_until(lambda: _mounted(th, mountpoint, share, "short"), 15, 0.2)
        assert mount.mounts == 1
        # the link goes and the master dies with it: mounted again once the host answers
        faults.cut("remote")
        await master.exit()
        await asyncio.sleep(2)
        assert mount.state == "remounting"
        faults.restore("remote")
        t0 = time.monotonic()
        assert await wait_until(lambda: _mounted(th, mountpoint, share, "after"), 30, 0.2)
        print(f"mount usable again {time.monotonic() - t0:.1f} s after the restore")
        assert mount.mounts == 2 and mount.state == "mounted"
        assert remote_mounts(th).count(f"/home/{th.user}/{mountpoint}") == 1
    finally:
        await mounts.stop()
    assert await wait_until(lambda: _async(not sshfs_procs(th)), 5), sshfs_procs(th)
    assert remote_mounts(th) == [] and local_servers(share) == []


def test_mount_syntax_round_trips_with_optional():
    m = parse_mount("/data:~/data:cache=no:optional")
    assert m == {
        "local_path": "/data",
        "remote_path": "~/data",
        "sshfs_options": "cache=no",
        "optional": True,
    }
    assert format_mount(m) == "/data:~/data:cache=no:optional"
    assert parse_mount("/a:/b:optional") == {
        "local_path": "/a",
        "remote_path": "/b",
        "sshfs_options": None,
        "optional": True,
    }
    with pytest.raises(InvalidField):
        parse_mount("/a:/b:x:y:optional")


async def test_two_kernels_share_a_mount_until_the_last_one_ends(
    netns_hosts, specs, managers, tree, mountpoint
):
    th = netns_hosts
    share, _ = tree
    mounts = [{"local_path": str(share), "remote_path": f"~/{mountpoint}"}]
    name = specs("ssh-shared", mount_local_on_remote=mounts)
    km1, km2 = managers(name), managers(name)
    kc1 = await start(km1)
    kc2 = await start(km2)
    mp = f"/home/{th.user}/{mountpoint}"
    assert km1.provisioner.mounts.items[0] is km2.provisioner.mounts.items[0]
    assert remote_mounts(th) == [mp] and len(local_servers(share)) == 1
    kc1.stop_channels()
    await km1.shutdown_kernel()
    out, _ = await run_code(kc2, f"print(open('{mp}/inner.txt').read())")
    assert out.strip() == "inner"  # still mounted for the second kernel
    kc2.stop_channels()
    await km2.shutdown_kernel()
    assert remote_mounts(th) == [] and local_servers(share) == []


async def test_a_newer_mount_of_the_same_path_takes_over_without_a_tug_of_war(
    netns_hosts, tree, mountpoint
):
    """Two Jupyter servers mounting the same remote path: the newer one wins, the older one
    says so instead of mounting again."""
    th = netns_hosts
    share, _ = tree
    master = Master.for_target(Target("remote", "ssh", str(th.ssh_config)))
    spec = [{"local_path": str(share), "remote_path": f"~/{mountpoint}"}]
    old = Mounts(master, th.remote_python_prefix, None, spec)
    await old.start(timeout=20)
    # as if in another Jupyter server: a runtime of its own
    new = Mounts(master, th.remote_python_prefix, None, spec, shared={})
    await new.start(timeout=20)
    try:
        assert await wait_until(lambda: _async(old.items[0].state == "failed"), 10)
        assert "replaced" in old.items[0].error
        await asyncio.sleep(1.5)  # no remount attempt follows
        assert old.items[0].mounts == 1 and new.items[0].state == "mounted"
        assert await _mounted(th, mountpoint, share, "new")
        assert remote_mounts(th) == [f"/home/{th.user}/{mountpoint}"]
        assert len(local_servers(share)) == 1
    finally:
        await new.stop()
        await old.stop()
    assert await wait_until(lambda: _async(not sshfs_procs(th)), 5), sshfs_procs(th)
    assert remote_mounts(th) == []
