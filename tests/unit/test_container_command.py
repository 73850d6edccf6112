"""The runtime's command for a kernel in a container (remote/container.py): pure logic, plus
the in-image start program run for real with this python (no runtime needed)."""

from __future__ import annotations

import json
import subprocess
import sys

from sshpyk.remote import container as c

BOX = {"runtime": "podman", "image": "ghcr.io/org/ml:2.1", "python": "python3", "options": []}


def test_podman_runs_the_kernel_as_the_user_on_the_hosts_network_with_the_binds():
    argv = c.run_argv(
        {**BOX, "options": ["--gpus=all"]},
        "sshpyk-abc-1",
        ["python3", "-c", "x"],
        ["/home/u/.sshpyk/run/abc", "/home/u/data"],
        ["OMP_NUM_THREADS"],
        uid=1000,
        gid=1000,
    )
    # no --rm: the nanny removes it once the kernel's end is told
    assert argv[:5] == ["podman", "run", "--name", "sshpyk-abc-1", "--network=host"]
    assert "--userns=keep-id" in argv and "--user" not in argv
    vol = "/home/u/data:/home/u/data"
    assert argv[argv.index(vol) - 1] == "--volume"
    # env by name only (values come from the client's environment); options before the image
    assert argv[argv.index("--env") + 1] == "OMP_NUM_THREADS"
    assert argv[-5:] == ["--gpus=all", "ghcr.io/org/ml:2.1", "python3", "-c", "x"]


def test_rootful_podman_and_docker_differ_only_in_how_the_user_is_kept():
    root = c.run_argv(BOX, "n", ["p"], [], [], uid=0, gid=0)
    assert "--userns=keep-id" not in root
    docker = c.run_argv({**BOX, "runtime": "docker"}, "n", ["p"], [], [], uid=1000, gid=50)
    assert docker[0] == "docker" and docker[docker.index("--user") + 1] == "1000:50"


def test_apptainer_execs_the_image_with_binds_and_expands_a_home_image(monkeypatch):
    monkeypatch.setenv("HOME", "/home/u")
    argv = c.run_argv(
        {"runtime": "apptainer", "image": "~/img/ml.sif", "options": ["--nv"]},
        "unused",
        ["python3", "-c", "x"],
        ["/home/u/.sshpyk/run/abc"],
        ["A"],
    )
    assert argv == [
        "apptainer",
        "exec",
        "--bind",
        "/home/u/.sshpyk/run/abc",
        "--nv",
        "/home/u/img/ml.sif",
        "python3",
        "-c",
        "x",
    ]


def test_binds_are_absolute_distinct_and_outermost():
    got = c.bind_paths(["/a/b", "/a", "/a/b/c", "/ab", None, "/a/"])
    assert got == ["/a", "/ab"]


def test_only_a_killed_podman_or_docker_client_needs_its_container_removed(monkeypatch):
    ran = []
    monkeypatch.setattr(c.subprocess, "run", lambda argv, **kw: ran.append(argv))
    c.stop_container(None)
    c.stop_container({"runtime": "apptainer", "name": "x"})
    c.stop_container({"runtime": "docker", "name": "sshpyk-1"})
    assert ran == [["docker", "rm", "--force", "sshpyk-1"]]


def test_the_start_program_goes_to_the_directory_and_becomes_the_kernelspec(tmp_path):
    """Run for real: a kernelspec other than python3 is found by jupyter_client (as in the
    image) and exec'd with {connection_file} filled in, in the working directory."""
    spec = tmp_path / "jp" / "kernels" / "mine"
    spec.mkdir(parents=True)
    probe = "import os,sys; print(os.getcwd(), sys.argv[1], os.environ['FROM_SPEC'])"
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["python", "-c", probe, "{connection_file}"],
                "env": {"FROM_SPEC": "yes"},
                "display_name": "x",
                "language": "python",
            }
        )
    )
    work = tmp_path / "work"
    work.mkdir()
    argv = c.inner_argv({"python": sys.executable}, "mine", "/run/k/connection.json", str(work))
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        env={"JUPYTER_PATH": str(tmp_path / "jp"), "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    assert out.split() == [str(work), "/run/k/connection.json", "yes"]
