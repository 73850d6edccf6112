"""A container runtime on the "remote" test host (issue #18's ``container``): rootless podman
for the test user, and a test image.

No registry is reachable, so the image is built here: the host's python and the test
environment (ipykernel, pyzmq) with the shared libraries they load, found with ldd, plus a
marker file, ``/etc/sshpyk-test-image``, that exists only in the image.  It is imported into
the test user's podman storage in the host's own home directory (each test host has its
own), once per harness instance, on first use.

Podman here: each test host mounts the unified cgroup hierarchy (topology.py), there is no
systemd user session (cgroupfs, events in a file), and storage is the kernel's rootless
overlay.  The runtime is runc: Debian 12's crun (1.8.1) leaves out the mounts inside a bound
directory in a rootless container, so an SSHFS mount would be an empty directory there
(runc carries it; seen here).  The user's runtime directory is the host's own
(``XDG_RUNTIME_DIR``, set by the harness's sshd): podman's pause process lives in the host's
namespaces and is ended with them (``harness down`` kills every process of the host's
network namespace).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .topology import REMOTE_ENV, TestHosts

IMAGE = "localhost/sshpyk-test:1"
MARKER = "/etc/sshpyk-test-image"
CONTAINERS_CONF = """\
# written by the sshpyk test harness (tests/harness/containers.py)
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
STORAGE_CONF = """\
# written by the sshpyk test harness (tests/harness/containers.py)
[storage]
driver = "overlay"
"""


def available() -> bool:
    return shutil.which("podman") is not None


def _image_files() -> dict[str, str]:
    """arcname -> host path: python, its stdlib, the test env, and what they link to."""
    python = os.path.realpath(REMOTE_ENV / "bin" / "python")
    stdlib = Path(python).parent.parent / "lib" / Path(python).name
    files = {python, "/usr/bin/dash"}
    shared = [python]
    for root in (stdlib, REMOTE_ENV):
        for d, _, names in os.walk(root):
            if "__pycache__" in d:
                continue
            for n in names:
                files.add(os.path.join(d, n))
                if ".so" in n:
                    shared.append(os.path.join(d, n))
    out = subprocess.run(["ldd", *shared], capture_output=True, text=True, check=False).stdout
    files |= {os.path.normpath(p) for p in re.findall(r"(/\S+\.so[.\d]*)", out)}
    arcs = {}
    for p in files:
        # merged /usr: /lib/x -> usr/lib/x (the image has /lib -> usr/lib)
        top = p.split("/")[1]
        arc = f"usr{p}" if top in ("lib", "lib64", "bin", "sbin") else p.lstrip("/")
        if os.path.isfile(p):
            arcs[arc] = p
    return arcs


def build_tarball(path: Path) -> None:
    arcs = _image_files()
    dirs = {"/".join(a.split("/")[:i]) for a in arcs for i in range(1, a.count("/") + 1)}
    with tarfile.open(path, "w", dereference=True) as tar:

        def add(name: str, kind: bytes, mode: int = 0o755, link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname = kind, mode, link
            tar.addfile(info)

        for d in sorted(dirs | {"etc", "tmp"}):
            add(d, tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755)
        for top in ("bin", "lib", "lib64", "sbin"):
            add(top, tarfile.SYMTYPE, link=f"usr/{top}")
        add("usr/bin/sh", tarfile.SYMTYPE, link="dash")
        for arc, p in sorted(arcs.items()):
            tar.add(p, arcname=arc, recursive=False)
        text = b"sshpyk test image\n"
        info = tarfile.TarInfo(MARKER.lstrip("/"))
        info.size, info.mode = len(text), 0o644
        tar.addfile(info, io.BytesIO(text))


def _write_as_user(th: TestHosts, path: str, text: str) -> None:
    argv = th.ssh_argv("remote", f'mkdir -p "$(dirname {path})" && cat > {path}')
    r = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=20, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"writing {path} on remote: {r.stderr}")


def _ensure_subids(user: str) -> None:
    """Subordinate uids and gids for the test user: rootless podman maps the image's users
    to them (useradd adds a range only where /etc/subuid already exists)."""
    ends, present = [0], []
    for path in ("/etc/subuid", "/etc/subgid"):
        lines = Path(path).read_text().splitlines() if Path(path).exists() else []
        fields = [line.split(":") for line in lines]
        present.append(any(f[0] == user for f in fields))
        ends += [int(f[1]) + int(f[2]) for f in fields if len(f) == 3]
    if all(present):
        return
    start = max(100000, *ends)
    span = f"{start}-{start + 65535}"
    subprocess.run(
        ["usermod", "--add-subuids", span, "--add-subgids", span, user], check=True, timeout=30
    )


def ensure_image(th: TestHosts) -> str:
    """The test image in the remote host's podman storage (imported on first use)."""
    _ensure_subids(th.user)
    _write_as_user(th, "~/.config/containers/containers.conf", CONTAINERS_CONF)
    _write_as_user(th, "~/.config/containers/storage.conf", STORAGE_CONF)
    if th.ssh("remote", f"podman image exists {IMAGE}").returncode == 0:
        return IMAGE
    tmp = Path(tempfile.mkdtemp(prefix="sshpyk-image-"))
    try:
        tarball = tmp / "image.tar"
        build_tarball(tarball)
        os.chmod(tmp, 0o755)  # noqa: S103 - the test user's podman reads the tarball
        os.chmod(tarball, 0o644)
        r = th.ssh("remote", f"podman import --quiet {tarball} {IMAGE}", timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"podman import on remote: {r.stderr}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return IMAGE


def containers(th: TestHosts) -> list[str]:
    """The names of the test user's containers on remote, running or not."""
    r = th.ssh("remote", "podman ps --all --format '{{.Names}}'")
    if r.returncode != 0:
        raise RuntimeError(f"podman ps on remote: {r.stderr}")
    return r.stdout.split()
