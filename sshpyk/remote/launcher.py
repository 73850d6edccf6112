# The kernel's launcher, then its nanny (the wire and the run dir: sshpyk/remote/protocol.py;
# remote/_prelude.py is sent ahead of this program).  Launch: find the kernelspec, make the
# run dir, start the kernel detached, wait until it listens on every channel, answer
# "ready".  Then be its nanny: EOF on stdin before "ack" means the launch was abandoned
# (the kernel is killed); after it, EOF means sshpyk lost touch and the kernel lives on
# under its lease (renewed while a monitor is attached: this one, or attach.py later), until
# the lease is older than lease_timeout: nothing is orphaned forever.
#
# Two processes: the ssh session's own child only relays the session's stdio to the nanny,
# a forked process in its own session that starts the kernel and stays its parent.  At EOF
# the relay exits, so sshd can close the session and the local ssh client ends with it; the
# nanny holds none of the session's pipes and keeps the kernel under its lease.
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
    EXIT_SUFFIX,
    KERNEL_LOG,
    LEASE,
    META,
    emit,
    fail,
    host_identity,
    kill_group,
    lease_age,
    let_go_of_stdio,
    private_dir,
    process_start,
    read_params,
    run_root,
    serve_commands,
    write_private,
)

PORT_ATTEMPTS = 3
LEASE_TICK = 2.0
PROBLEMS = {
    "kernel_died": "the kernel exited during start-up",
    "launch_timeout": "the kernel did not listen within the launch timeout",
    "kernel_exec_failed": "the kernel's command could not be run",
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


def ipc_dir(rundir):
    """Where the kernel's sockets go: its run dir, or, when that path is too long for a
    socket address (a long $HOME) or has a ':' (which ends a -L spec), a fresh private
    directory (0700, unpredictable name) in a short temporary one."""
    longest = os.path.join(rundir, f"k-{len(CHANNELS)}")
    if len(os.fsencode(longest)) < SUN_PATH and ":" not in rundir:
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


def touch(path):
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.utime(path)


def cleanup(rundir, sockets):
    shutil.rmtree(rundir, ignore_errors=True)
    if sockets and sockets != rundir:
        shutil.rmtree(sockets, ignore_errors=True)


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


def start_kernel(params, spec, rundir, sockets, umask, deadline):
    """The kernel, listening: (process, ip, ports), or the launch fails."""
    transport, name = params["transport"], params["kernel_name"]
    env = kernel_env(spec, params)
    logpath = os.path.join(rundir, KERNEL_LOG)
    cwd = os.path.expanduser(params.get("cwd") or "~")
    if not os.path.isdir(cwd):
        cwd = os.path.expanduser("~")
    # Ports are picked free, then bound by the kernel: another process may take one in
    # between (concurrent launches do).  The kernel then dies with EADDRINUSE: try again.
    for attempt in range(PORT_ATTEMPTS):
        ip, ports = endpoints(transport, sockets)
        cf = write_connection_file(rundir, ports, ip, transport, params, name)
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
            fail(problem, PROBLEMS[problem], log=tail)
        with open(logpath, "wb"):
            pass  # the next attempt's log starts clean


# ---- the two processes -----------------------------------------------------------------------
def pump(src, dst):
    """Copy fd ``src`` to fd ``dst`` until EOF or an error."""
    while True:
        try:
            data = os.read(src, 65536)
            if not data:
                return
            while data:
                data = data[os.write(dst, data) :]
        except OSError:
            return


def split_off_nanny():
    """Fork the nanny (see the top of this file).  Returns in the nanny, with sys.stdin and
    sys.stdout connected to this process, the relay, which never returns."""
    cmd_r, cmd_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() == 0:
        os.setsid()
        for fd in (cmd_w, out_r, err_r):
            os.close(fd)
        # hold none of the session's pipes: while any process does, the session stays open
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (null, out_w, err_w):
            os.close(fd)
        sys.stdin = os.fdopen(cmd_r, "r")
        sys.stdout = os.fdopen(1, "w")
        sys.stderr = os.fdopen(2, "w")
        return
    for fd in (cmd_r, out_w, err_w):
        os.close(fd)

    def down():
        for line in sys.stdin:  # the loader's buffered stdin: it may hold more than it read
            try:
                os.write(cmd_w, line.encode())
            except OSError:
                break
        # EOF: the local side is gone or done.  The nanny sees EOF too: before "ack" it
        # kills the kernel and ends, after it it lets go of its stdout; either way the pump
        # below sees EOF and this process ends, so the session (and the ssh client holding
        # it) can end, once nothing of the launch is left to report.
        os.close(cmd_w)
        time.sleep(5.0)
        os._exit(0)

    threading.Thread(target=down, daemon=True).start()
    err = threading.Thread(target=pump, args=(err_r, 2), daemon=True)
    err.start()
    pump(out_r, 1)
    err.join(1.0)
    os._exit(0)


# ---- launch, then nanny ----------------------------------------------------------------------
def launch(params):
    """Start the kernel and answer "ready"; returns in the nanny, the kernel's ``Nanny``."""
    deadline = time.monotonic() + float(params["launch_timeout"])
    lease_timeout = float(params.get("lease_timeout") or 3600)
    name = params["kernel_name"]
    spec = kernelspec(name)
    private_dir(os.path.dirname(run_root()))
    rundir = private_dir(os.path.join(private_dir(run_root()), params["kernel_id"][:12]))
    # sshpyk's own files are the user's alone; the kernel gets the login umask back
    login_umask = os.umask(0o077)
    transport = params["transport"]
    sockets = ipc_dir(rundir) if transport == "ipc" else None
    session = os.getpid()
    session_start = process_start(session)
    split_off_nanny()
    proc, ip, ports = start_kernel(params, spec, rundir, sockets, login_umask, deadline)
    host = host_identity()
    facts = {"pid": proc.pid, "pgid": proc.pid, "ip": ip, "ports": ports, "transport": transport}
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
    return Nanny(proc, rundir, sockets, host, lease_timeout)


class Nanny:
    """The kernel's parent from "ready" on (see the top of this file)."""

    def __init__(self, proc, rundir, sockets, host, lease_timeout):
        self.proc, self.pgid = proc, proc.pid  # start_new_session: the kernel leads its group
        self.rundir, self.sockets, self.host = rundir, sockets, host
        self.lease = os.path.join(self.rundir, LEASE)
        self.lease_timeout = lease_timeout
        self.acked = threading.Event()
        self.detached = threading.Event()

    def signal(self, n):
        # not once the kernel is reaped: its pid (the group's id) may be reused
        if self.proc.returncode is None:
            kill_group(self.pgid, n)

    def commands(self):
        serve_commands(self.signal, on_ack=self.acked.set)
        # EOF: abandoned before the hand-over -> kill; after it -> the link is gone and
        # the kernel lives on under its lease (reaped and cleaned up by this process).
        self.detached.set()
        if not self.acked.is_set():
            kill_group(self.pgid, signal.SIGKILL)
            return
        let_go_of_stdio()  # the session (and the ssh client that held it) can end

    def keep_lease(self):
        while self.proc.poll() is None:
            if not self.detached.is_set():
                touch(self.lease)
            elif lease_age(self.lease) > self.lease_timeout:
                kill_group(self.pgid, signal.SIGTERM)  # abandoned: nobody renewed the lease
                for _ in range(50):
                    if self.proc.poll() is not None:
                        return
                    time.sleep(0.1)
                kill_group(self.pgid, signal.SIGKILL)
                return
            time.sleep(LEASE_TICK)

    def run(self):
        threading.Thread(target=self.commands, daemon=True).start()
        threading.Thread(target=self.keep_lease, daemon=True).start()
        rc = self.proc.wait()
        # the whole group: children the kernel left behind must not outlive it
        kill_group(self.pgid, signal.SIGKILL)
        if self.detached.is_set() and self.acked.is_set():
            # for a monitor attached later (attach.py), which is not the kernel's parent; an
            # abandoned launch (EOF before "ack") has nobody to tell
            write_private(self.rundir + EXIT_SUFFIX, {"exit": rc, "host": self.host})
        cleanup(self.rundir, self.sockets)
        emit(exit=rc)


def main():
    launch(read_params()).run()


if __name__ == "__main__":
    main()
