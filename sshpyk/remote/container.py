"""The kernel in a container (the kernelspec's ``container``; bundled into launcher.py,
nanny.py and running.py).

Only the kernel runs in the image: sshpyk's launcher, nanny and relay hub stay on the host
(a container ends with its first process, and the kernel must outlive the ssh session that
started it).  The runtime's client is the kernel's process for sshpyk: it leads the kernel's
process group, its exit is the kernel's, and the runtimes pass signals on (podman and docker
proxy them; apptainer's kernel is a plain child).  The kernel sees the host's paths where
sshpyk needs them: its run dir (the connection file, ipc sockets), the working directory and
the SSHFS mounts are bound at the same paths, and it shares the host's network (tcp
channels listen on the host's 127.0.0.1).  Its environment is the kernelspec's ``env``:
names only in argv, values from the client's environment.
"""

import contextlib
import os
import subprocess

# The kernel's start inside, python only (an image may have no shell): go to the working
# directory, then run ipykernel, or (a remote kernelspec other than ipykernel's "python3")
# let jupyter_client in the image find the spec and become it.  The python goes there
# itself: podman's and docker's runtimes would enter --workdir as the container's root,
# which an SSHFS mount there does not answer (FUSE serves its own user only).
START = (
    "import os,sys\n"
    "os.chdir(sys.argv[1])\n"
    "name,cf=sys.argv[2],sys.argv[3]\n"
    "if name=='python3':\n"
    "    import runpy\n"
    "    sys.argv=['ipykernel_launcher','-f',cf]\n"
    "    runpy.run_module('ipykernel_launcher',run_name='__main__',alter_sys=True)\n"
    "    sys.exit()\n"
    "from jupyter_client.kernelspec import KernelSpecManager\n"
    "s=KernelSpecManager().get_kernel_spec(name)\n"
    "t={'{connection_file}':cf,'{resource_dir}':s.resource_dir,'{prefix}':sys.prefix}\n"
    "a=[]\n"
    "for x in s.argv:\n"
    "    for k,v in t.items():\n"
    "        x=x.replace(k,v)\n"
    "    a.append(x)\n"
    "if a[0] in ('python','python3'):\n"
    "    a[0]=sys.executable\n"
    "e=dict(os.environ)\n"
    "e.update({k:os.path.expandvars(v) for k,v in (s.env or {}).items()})\n"
    "os.execvpe(a[0],a,e)\n"
)
STOP_TIMEOUT = 20.0


def container_name(kernel_id):
    """Unique on the host: a restart's kernel may start while the last one is removed."""
    return f"sshpyk-{kernel_id[:12]}-{os.getpid()}"


def image_python(container):
    """The kernel's python in the image (the schema's default: ``python3`` on its PATH)."""
    return container.get("python") or "python3"


def inner_argv(container, kernel_name, connection_file, cwd):
    return [image_python(container), "-c", START, cwd, kernel_name, connection_file]


def bind_paths(paths):
    """Absolute, distinct, outermost first; a path inside another bound one is dropped."""
    out = []
    for p in sorted({os.path.abspath(os.path.expanduser(p)) for p in paths if p}, key=len):
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return out


def run_argv(container, name, inner, binds, env_names, uid=None, gid=None):
    """The runtime's command line that runs ``inner`` in the image."""
    runtime = container["runtime"]
    image = container["image"]
    if image.startswith("~/"):
        image = os.path.expanduser(image)  # an image file in the home (apptainer)
    options = list(container.get("options") or [])
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    if runtime in ("apptainer", "singularity"):
        argv = [runtime, "exec"]
        for b in binds:
            argv += ["--bind", b]
        return [*argv, *options, image, *inner]
    # no --rm: the client would end seconds after the kernel, while it removes the container
    # (a shutdown waits for that end); the nanny removes it once the end is told (nanny.py)
    argv = [runtime, "run", "--name", name, "--network=host"]
    # the user's own uid inside, so the run dir (0700) and the files it writes stay theirs
    if runtime == "podman":
        if uid != 0:
            argv.append("--userns=keep-id")
    else:
        argv += ["--user", f"{uid}:{gid}"]
    # SELinux hosts would deny the bound home directories otherwise (relabeling them is no
    # option: they are the user's)
    argv += ["--security-opt", "label=disable"]
    for b in binds:
        argv += ["--volume", f"{b}:{b}"]
    for n in env_names:
        argv += ["--env", n]
    return [*argv, *options, image, *inner]


def stop_container(info):
    """End and remove a kernel's podman or docker container: it outlives a killed client
    (conmon, the daemon hold it), and an ended one stays until removed.  Quiet when gone."""
    if not info or info.get("runtime") not in ("podman", "docker") or not info.get("name"):
        return
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [info["runtime"], "rm", "--force", info["name"]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=STOP_TIMEOUT,
            check=False,
        )
