# The kernel's launcher, then its nanny (the wire and the run dir: sshpyk/remote/protocol.py;
# remote/_prelude.py is sent ahead of this program).  Launch: find the kernelspec, make the
# run dir, start the kernel detached, wait until it listens on every channel, answer
# "ready".  Then be its nanny: EOF on stdin before "ack" means the launch was abandoned
# (the kernel is killed); after it, EOF means sshpyk lost touch and the kernel lives on
# under its lease (renewed while a monitor is attached: this one, or attach.py later), until
# the lease is older than lease_timeout: nothing is orphaned forever.
# The nanny, and the two processes a launch becomes, are in nanny.py (bundled with this
# program, as relay_hub.py, relay_wire.py and relay_journal.py are for channels: relay).
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from ._prelude import (  # sshpyk: bundled
    CHANNELS,
    CONNECTION_FILE,
    KERNEL_LOG,
    LEASE,
    META,
    RELAY_SOCKET,
    emit,
    fail,
    host_identity,
    kill_group,
    private_dir,
    process_start,
    read_params,
    run_root,
    write_private,
)
from .container import (  # sshpyk: bundled
    bind_paths,
    container_name,
    inner_argv,
    run_argv,
)
from .nanny import Nanny, cleanup, split_off_nanny, touch  # sshpyk: bundled
from .relay_hub import Hub  # sshpyk: bundled
from .relay_journal import JOURNAL_LIMIT  # sshpyk: bundled

PORT_ATTEMPTS = 3
PROBLEMS = {
    "kernel_died": "the kernel exited during start-up",
    "launch_timeout": "the kernel did not listen within the launch timeout",
    "kernel_exec_failed": "the kernel's command could not be run",
}
CONTAINER_PROBLEMS = {
    "kernel_died": "the kernel's container ended during start-up",
    "kernel_exec_failed": "the container runtime could not be run",
}
# A unix socket's path must fit sockaddr_un.sun_path, NUL included.
SUN_PATH = 104 if sys.platform == "darwin" or "bsd" in sys.platform else 108


# ---- ports and sockets ---------------------------------------------------------------------
def pick_ports():
    """Free ports on 127.0.0.1, one per channel (the kernel binds them; see start_kernel)."""
    socks, ports = [], []
    for _ in CHANNELS:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def endpoint_up(transport, ip, port):
    if transport == "ipc":
        s = socket.socket(socket.AF_UNIX)
        addr = f"{ip}-{port}"
    else:
        s = socket.socket()
        addr = (ip, port)
    s.settimeout(0.5)
    try:
        s.connect(addr)
        return True
    except OSError:
        return False
    finally:
        s.close()


def ipc_dir(rundir, local=False):
    """Where the kernel's sockets go: its run dir, or, when that path is too long for a
    socket address (a long $HOME) or has a ':' (which ends a -L spec), or ``local`` asks
    for the host's own disk (a Slurm node: $HOME is a cluster file system there), a fresh
    private directory (0700, unpredictable name) in a short temporary one."""
    longest = os.path.join(rundir, f"k-{len(CHANNELS)}")
    if len(os.fsencode(longest)) < SUN_PATH and ":" not in rundir and not local:
        return rundir
    for base in (os.environ.get("XDG_RUNTIME_DIR"), tempfile.gettempdir()):
        if base and ":" not in base and len(os.fsencode(base)) + 20 < SUN_PATH:
            try:
                return tempfile.mkdtemp(prefix="sshpyk-", dir=base)
            except OSError:
                continue
    shutil.rmtree(rundir, ignore_errors=True)
    fail(
        "ipc_path_too_long",
        f"no directory short enough for the kernel's unix sockets ({longest!r} is too long)",
    )


def endpoints(transport, sockets):
    """The kernel's ip and its channels' ports (ipc: socket suffixes), in CHANNELS order."""
    if transport == "ipc":
        return os.path.join(sockets, "k"), list(range(1, len(CHANNELS) + 1))
    return "127.0.0.1", pick_ports()


# ---- the kernelspec --------------------------------------------------------------------------
def jupyter_data_dirs():
    """jupyter_core's data path, from the stdlib: importing jupyter_client costs ~150 ms."""
    dirs = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    user = os.environ.get("JUPYTER_DATA_DIR") or os.path.join(xdg, "jupyter")
    env = os.path.join(sys.prefix, "share", "jupyter")
    in_env = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    dirs += [env, user] if in_env else [user, env]
    return [*dirs, "/usr/local/share/jupyter", "/usr/share/jupyter"]


def find_kernelspec(name):
    """The kernelspec ``name`` as jupyter_client would find it, or None when unsure."""
    for d in jupyter_data_dirs():
        rdir = os.path.join(d, "kernels", name)
        path = os.path.join(rdir, "kernel.json")
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    spec = json.load(f)
            except ValueError:
                return None
            if not isinstance(spec.get("argv"), list) or not spec["argv"]:
                return None
            spec["resource_dir"] = rdir
            return spec
    if name == "python3" and importlib.util.find_spec("ipykernel") is not None:
        # ipykernel's built-in spec, which jupyter_client adds when none is installed
        return {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "env": {},
            "resource_dir": os.path.join(
                os.path.dirname(importlib.util.find_spec("ipykernel").origin), "resources"
            ),
        }
    return None


def kernelspec(name):
    """The kernelspec ``name``, or the launch fails with what this python offers."""
    if importlib.util.find_spec("jupyter_client") is None:
        fail(
            "jupyter_client_missing",
            f"jupyter_client is not installed in {sys.prefix}",
            python=sys.version.split()[0],
        )
    spec = find_kernelspec(name)
    if spec is not None:
        return spec
    # the authoritative (and slower) answer, with the list of what there is
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    try:
        found = ksm.get_kernel_spec(name)
    except NoSuchKernel:
        fail(
            "kernelspec_not_found",
            f"no kernelspec {name!r} in {sys.prefix}",
            available=sorted(ksm.find_kernel_specs()),
        )
    return {"argv": found.argv, "env": found.env, "resource_dir": found.resource_dir}


def kernel_argv(spec, cf):
    """The kernel's command, for the connection file ``cf``, run by this python."""
    template = spec["argv"]
    if template and template[0] in (
        "python",
        "python3",
        "python{}.{}".format(*sys.version_info[:2]),
    ):
        template = [sys.executable, *template[1:]]
    return [
        a.replace("{connection_file}", cf)
        .replace("{resource_dir}", spec["resource_dir"])
        .replace("{prefix}", sys.prefix)
        for a in template
    ]


def kernel_env(spec, params):
    env = dict(os.environ)
    for k, v in (spec.get("env") or {}).items():
        env[k] = os.path.expandvars(v)
    env.update(params.get("env") or {})
    env.pop("PYTHONEXECUTABLE", None)
    return env


# ---- starting the kernel ---------------------------------------------------------------------
def log_tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def write_connection_file(rundir, ports, ip, transport, params, name):
    info = {f"{c}_port": p for c, p in zip(CHANNELS, ports)}
    info.update(
        ip=ip,
        transport=transport,
        key=params["key"],
        signature_scheme=params["signature_scheme"],
        kernel_name=name,
    )
    cf = os.path.join(rundir, CONNECTION_FILE)
    write_private(cf, info)
    return cf


def with_umask(mask):
    """Popen arguments that give the child ``mask`` (the launcher itself keeps 077)."""
    if sys.version_info >= (3, 9):
        return {"umask": mask}
    return {"preexec_fn": lambda: os.umask(mask)}  # single-threaded here: safe


def start_and_wait(argv, env, cwd, logpath, transport, ip, ports, deadline, umask):
    """Start the kernel detached and wait until every endpoint listens:
    (process, None), or (None, what went wrong) with the kernel gone."""
    fd = os.open(logpath, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                close_fds=True,
                **with_umask(umask),
            )
        except OSError as e:
            log.write(f"could not run {argv[0]}: {e}\n".encode())
            return None, "kernel_exec_failed"
    while True:
        if proc.poll() is not None:
            return None, "kernel_died"
        if all(endpoint_up(transport, ip, p) for p in ports):
            return proc, None
        if time.monotonic() > deadline:
            kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
            return None, "launch_timeout"
        time.sleep(0.02)


def working_dir(params, rundir, sockets):
    """The kernel's directory: ``cwd`` (the notebook's, mapped into a mount, or the
    kernelspec's ``remote_cwd``), else ``cwd_else``; a kernelspec's own directory that is
    missing fails the launch (``cwd_strict``), anything else falls back to the home."""
    for path in (params.get("cwd"), params.get("cwd_else")):
        if path and os.path.isdir(os.path.expanduser(path)):
            return os.path.expanduser(path)
    if params.get("cwd_strict"):
        cleanup(rundir, sockets)
        missing = params.get("cwd_else") or params.get("cwd")
        fail("cwd_missing", f"the working directory {missing} is not a directory on this host")
    return os.path.expanduser("~")


def container_command(params, rundir, sockets, cwd, cf):
    """The runtime's command that runs the kernel in the kernelspec's image (container.py)."""
    container = params["container"]
    # a mount's parent, not the mount: a FUSE mount answers only its own user, and the
    # runtime that makes the binds is someone else (the container's root, the daemon)
    mounts = [os.path.dirname(os.path.expanduser(m).rstrip("/")) for m in params.get("binds") or []]
    binds = bind_paths([rundir, sockets, cwd, *mounts])
    bad = [b for b in binds if ":" in b or "," in b]
    if bad:
        cleanup(rundir, sockets)
        fail(
            "container_bind",
            f"{bad[0]} cannot be bound into a container: its path has a ':' or a ','",
        )
    inner = inner_argv(container, params["kernel_name"], cf, cwd)
    names = sorted(params.get("env") or {})
    return run_argv(container, params["container_name"], inner, binds, names)


def start_kernel(params, spec, rundir, sockets, umask, deadline):
    """The kernel, listening: (process, ip, ports), or the launch fails."""
    transport, name = params["transport"], params["kernel_name"]
    env = kernel_env(spec, params)
    logpath = os.path.join(rundir, KERNEL_LOG)
    cwd = working_dir(params, rundir, sockets)
    container = params.get("container")
    # Ports are picked free, then bound by the kernel: another process may take one in
    # between (concurrent launches do).  The kernel then dies with EADDRINUSE: try again.
    for attempt in range(PORT_ATTEMPTS):
        ip, ports = endpoints(transport, sockets)
        cf = write_connection_file(rundir, ports, ip, transport, params, name)
        if container:
            argv = container_command(params, rundir, sockets, cwd, cf)
        else:
            argv = kernel_argv(spec, cf)
        proc, problem = start_and_wait(
            argv, env, cwd, logpath, transport, ip, ports, deadline, umask
        )
        if proc is not None:
            return proc, ip, ports
        tail = log_tail(logpath)
        retry = (
            problem == "kernel_died"
            and transport == "tcp"
            and "Address already in use" in tail
            and attempt + 1 < PORT_ATTEMPTS
        )
        if not retry:
            cleanup(rundir, sockets)
            words = (CONTAINER_PROBLEMS if container else {}).get(problem) or PROBLEMS[problem]
            fail(problem, words, log=tail)
        with open(logpath, "wb"):
            pass  # the next attempt's log starts clean


# ---- launch, then nanny ----------------------------------------------------------------------
def launch(params):
    """Start the kernel and answer "ready"; returns in the nanny, the kernel's ``Nanny``."""
    deadline = time.monotonic() + float(params["launch_timeout"])
    lease_timeout = float(params.get("lease_timeout") or 3600)
    name = params["kernel_name"]
    container = params.get("container")
    if container:
        # the kernelspec is the image's (container.py); this python only runs sshpyk
        spec = {"argv": [], "env": {}, "resource_dir": ""}
        params["container_name"] = container_name(params["kernel_id"])
        if shutil.which(container["runtime"]) is None:
            fail(
                "container_runtime_missing",
                f"{container['runtime']} is not on the host's PATH (a prelude line such as "
                f"'module load {container['runtime']}' may provide it)",
            )
    else:
        spec = kernelspec(name)
    private_dir(os.path.dirname(run_root()))
    rundir = private_dir(os.path.join(private_dir(run_root()), params["kernel_id"][:12]))
    # sshpyk's own files are the user's alone; the kernel gets the login umask back
    login_umask = os.umask(0o077)
    relay = params.get("channels") == "relay"
    transport = "ipc" if relay else params["transport"]  # the relay's kernel: ipc only
    params["transport"] = transport
    sockets = ipc_dir(rundir, params.get("local_sockets")) if transport == "ipc" else None
    session = os.getpid()
    session_start = process_start(session)
    split_off_nanny(os.path.join(sockets, RELAY_SOCKET) if relay else None)
    if relay:  # imported while the kernel starts (~50 ms of a launch otherwise)
        threading.Thread(target=__import__, args=("zmq",), daemon=True).start()
    proc, ip, ports = start_kernel(params, spec, rundir, sockets, login_umask, deadline)
    host = host_identity()
    facts = {"pid": proc.pid, "pgid": proc.pid, "ip": ip, "ports": ports, "transport": transport}
    if container:  # to end it when its client is killed (container.stop)
        facts["container"] = {"runtime": container["runtime"], "name": params["container_name"]}
    if os.environ.get("SLURM_JOB_ID"):  # inside a Slurm job (kernel/slurm.py): `sshpyk ps`
        facts["slurm_job"] = os.environ["SLURM_JOB_ID"]
    hub = None
    if relay:
        limit = int(params.get("journal_limit") or JOURNAL_LIMIT)
        hub = Hub(ip, ports, params["key"], params["signature_scheme"], limit, sockets)
        facts["relay"] = hub.path
    write_private(
        os.path.join(rundir, META),
        {
            "kernel_id": params.get("kernel_uuid"),
            "kernelspec": params.get("kernelspec"),
            "remote_kernel": name,
            "host": host,
            **facts,
            "pid_start": process_start(proc.pid),
            "nanny": os.getpid(),
            "nanny_start": process_start(os.getpid()),
            "session": session,
            "session_start": session_start,
            "ipc_dir": sockets,
            "started_at": time.time(),
            "lease_timeout": lease_timeout,
        },
    )
    touch(os.path.join(rundir, LEASE))
    emit(
        ready=True,
        **facts,
        rundir=rundir,
        hostname=host["hostname"],
        host=host,
        python=sys.version.split()[0],
    )
    return Nanny(proc, rundir, sockets, host, lease_timeout, hub, facts.get("container"))


def main():
    launch(read_params()).run()


if __name__ == "__main__":
    main()
