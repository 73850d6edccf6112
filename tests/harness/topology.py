"""Real OpenSSH test hosts: ``remote``, ``bastion`` and ``internal`` (only via the bastion),
and ``noforward``: the remote's sshd on a second port where port forwarding is forbidden.
In netns mode also the login hosts ``otp`` (key and a TOTP code) and ``password``: more
sshds on the remote, see ``logins.py``.

Two ways to build them, same interface (:class:`TestHosts`):

* ``netns`` (root): one network namespace per host, each with a root sshd on :22, its own
  host key, hostname (UTS namespace) and ``$HOME`` (bind mount in the host's private mount
  namespace), key-only login for the unprivileged user ``sshpyktest``.  ``internal`` sits
  behind ``bastion`` on a subnet the root namespace has no route to.
* ``loopback`` (anyone): sshd run as the current user on 127.0.0.x.  ``internal`` only
  accepts logins coming from 127.0.0.1, i.e. forwarded by the bastion, because the client
  binds its own connections to 127.0.0.9.  No fault helpers in this mode.

Network safety: test hosts live in 10.200.0.0/16 and ``ip route replace unreachable
10.200.0.0/16`` runs before any namespace exists (and stays), so a packet for a test
address that finds no veth route fails locally instead of leaving through the default
route.  Nothing here ever targets another address.

The Slurm cluster (login host ``hpc``, compute host ``node1``) is built onto a netns instance
only when a test asks for it: ``slurm.py``.

Every process is started by us and ended by PID; teardown removes namespaces, veths,
mounts and the state dir, and :meth:`TestHosts.leftovers` proves it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import logins, procinfo
from .proc import HarnessError, is_root, kill_pids, pid_alive, run

SAFETY_ROUTE = "10.200.0.0/16"
TEST_USER = "sshpyktest"
SSHD = "/usr/sbin/sshd"
# Debian's interpreter, not the pyenv one under /root (0700): the test user must run it.
REMOTE_ENV = Path("/opt/sshpyk-remote-env")
REMOTE_PACKAGES = ("ipykernel", "jupyter_client")
HOST_NAMES = ("remote", "bastion", "internal")
# The remote's sshd also listens on this port (loopback mode: the instance's port + 1000),
# where it forbids all forwarding (DisableForwarding yes), as hardened login nodes do; the
# client config reaches it as the alias "noforward".
NOFORWARD_PORT = 2222


def wait_tcp(address: str, port: int, timeout: float = 5.0, netns: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if netns:
            probe = run(
                [
                    "ip",
                    "netns",
                    "exec",
                    netns,
                    sys.executable,
                    "-c",
                    f"import socket; socket.create_connection(({address!r}, {port}), 0.5)",
                ],
                check=False,
                timeout=5,
            )
            if probe.returncode == 0:
                return
        else:
            try:
                socket.create_connection((address, port), 0.5).close()
                return
            except OSError:
                pass
        time.sleep(0.02)
    raise HarnessError(f"sshd at {address}:{port} did not come up within {timeout}s")


@dataclass
class Host:
    name: str  # remote | bastion | internal
    alias: str  # Host alias in the test ssh config
    address: str
    port: int = 22
    netns: str | None = None
    uplink: str | None = None  # interface inside the netns that carries its traffic
    sshd_pid: int | None = None


@dataclass
class TestHosts:
    """A built set of test hosts; everything generated lives under ``state``."""

    mode: str  # netns | loopback
    prefix: str
    index: int
    state: Path
    user: str
    remote_python_prefix: str
    hosts: dict[str, Host] = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)  # helper processes to end on teardown
    # otp and password: sshds in the remote's namespace wanting a login (netns mode only)
    login_hosts: dict[str, Host] = field(default_factory=dict)

    # ---- paths ---------------------------------------------------------------------------
    @property
    def ssh_config(self) -> Path:
        return self.state / "ssh_config"

    @property
    def client_key(self) -> Path:
        return self.state / "keys" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.state / "known_hosts"

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    # ---- use -----------------------------------------------------------------------------
    def ssh_argv(self, alias: str, *command: str, options: tuple[str, ...] = ()) -> list[str]:
        """argv for ``ssh -F <test config> [options] -- alias command``."""
        return ["ssh", "-F", str(self.ssh_config), *options, "--", alias, *command]

    def ssh(self, alias: str, *command: str, timeout: float = 20, options=()):
        return run(self.ssh_argv(alias, *command, options=options), check=False, timeout=timeout)

    # ---- the login hosts (netns mode only) --------------------------------------------------
    @property
    def has_login_hosts(self) -> bool:
        """Whether ``otp`` and ``password`` exist (netns mode: they need root and PAM)."""
        return bool(self.login_hosts)

    @property
    def password(self) -> str:
        """The test user's password on the ``password`` host (random per run)."""
        return logins.read_password(self.state)

    @property
    def otp_secret(self) -> str:
        """The hex OATH secret of the ``otp`` host: ``oathtool --totp SECRET``."""
        return logins.otp_secret(self.state)

    def otp_code(self, min_valid: float = 5.0) -> str:
        """A fresh one-time code the ``otp`` host accepts for ``min_valid`` seconds more
        (waits for the next 30 s step when needed; each code is handed out once)."""
        return logins.otp_code(self.state, min_valid)

    def wrong_otp_code(self) -> str:
        """A well-formed one-time code the ``otp`` host refuses."""
        return logins.wrong_otp_code(self.state)

    def identify(self, alias: str, timeout: float = 20) -> str:
        """The name of the host an ssh to ``alias`` lands on (works in both modes)."""
        out = self.ssh(alias, 'echo "$SPK_HOST"', timeout=timeout)
        if out.returncode != 0:
            raise HarnessError(f"ssh {alias} failed: {out.stderr.strip()}")
        return out.stdout.strip()

    # ---- persistence (so a crashed run can still be torn down) ---------------------------
    def save(self) -> None:
        data = asdict(self)
        data["state"] = str(self.state)
        (self.state / "topology.json").write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, state: Path) -> TestHosts:
        data = json.loads((state / "topology.json").read_text())
        data["state"] = Path(data["state"])
        data["hosts"] = {k: Host(**v) for k, v in data["hosts"].items()}
        data["login_hosts"] = {k: Host(**v) for k, v in data.get("login_hosts", {}).items()}
        return cls(**data)

    def add_pid(self, pid: int) -> None:
        self.pids.append(pid)
        self.save()

    # ---- teardown ------------------------------------------------------------------------
    def leftovers(self) -> list[str]:
        """What is still there of this instance: an empty list means fully torn down."""
        from . import slurm  # builds on this module: imported when used, not at load time

        left = []
        names = [h.netns for h in self.hosts.values() if h.netns]
        existing = set(netns_list())
        left += [f"netns {n}" for n in names if n in existing]
        links = run(["ip", "-o", "link"], check=False).stdout if shutil.which("ip") else ""
        left += [
            f"link {v}" for v in veth_names(self.prefix) if f" {v}@" in links or f" {v}:" in links
        ]
        left += [
            f"mount {m}" for m in procinfo.mount_points() if m.startswith(str(self.state) + "/")
        ]
        left += [f"pid {p}" for p in self.pids if pid_alive(p)]
        left += [
            f"pid {h.sshd_pid} (sshd of {h.name})"
            for h in self.login_hosts.values()
            if h.sshd_pid and pid_alive(h.sshd_pid)
        ]
        left += logins.leftovers(self.state)
        left += slurm.leftovers(self.prefix, self.state)
        left += [f"pid {p} ({cmd[:60]})" for p, cmd in processes_mentioning(str(self.state))]
        if self.state.exists():
            left.append(f"dir {self.state}")
        return left


def netns_list() -> list[str]:
    if not shutil.which("ip"):
        return []
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def veth_names(prefix: str) -> list[str]:
    return [f"{prefix}-b0", f"{prefix}-r0"]


def processes_mentioning(state: str) -> list[tuple[int, str]]:
    """Processes of a test-host instance: its state dir on their command line, or started by
    one of its sshds (they carry SPK_STATE in their environment, even when detached)."""
    marker = f"SPK_STATE={state}"
    return [
        (p.pid, p.cmdline)
        for p in procinfo.others(procinfo.processes(with_env=True))
        if (state in p.cmdline or marker in p.env) and not p.zombie
    ]


# ==== building ================================================================================


def state_dir(prefix: str) -> Path:
    # short on purpose: ssh ControlPaths under it must fit a 108-byte sun_path
    return Path(f"/tmp/{prefix}")


def _subnet(index: int, k: int) -> str:
    """Third octet of subnet k (0 bastion uplink, 1 internal, 2 remote) of instance ``index``."""
    return f"10.200.{index * 4 + k}"


def _ensure_test_user() -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(TEST_USER)
    except KeyError:
        run(["useradd", "-m", "-s", "/bin/bash", TEST_USER])
        pw = pwd.getpwnam(TEST_USER)
    # useradd leaves the account locked ("!"), which sshd refuses with UsePAM no; "*" means
    # no usable password but not locked: key-only login.  A password another instance set
    # for its login host "password" stays (logins.py: it is shared while that one is up).
    shadow = logins.shadow_hash(TEST_USER) or ""
    if shadow in ("", "*") or shadow.startswith("!"):
        run(["usermod", "-p", "*", TEST_USER])
    return pw.pw_uid, pw.pw_gid


def ensure_remote_env(path: Path = REMOTE_ENV) -> Path:
    """The Python environment the test user runs kernels from on the test hosts."""
    py = path / "bin" / "python"
    probe = "import " + ", ".join(REMOTE_PACKAGES)
    if py.exists() and run([str(py), "-c", probe], check=False).returncode == 0:
        return path
    base = shutil.which("python3", path="/usr/bin") or sys.executable
    run([base, "-m", "venv", str(path)], timeout=120)
    run([str(py), "-m", "pip", "install", "-q", *REMOTE_PACKAGES], timeout=600)
    os.chmod(path, 0o755)  # noqa: S103 - the unprivileged test user runs kernels from it
    return path


def _keygen(path: Path, comment: str) -> str:
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_suffix(".pub").read_text().split()[0:2]


def _sshd_config(
    host: Host,
    hostdir: Path,
    *,
    user: str,
    listen: list[str],
    extra: str = "",
    noforward_port: int | None = None,
    login: str | None = None,
    port: int | None = None,
    setenv: str = "",
) -> Path:
    """The host's sshd_config, or with ``login`` (otp|password) that of its login sshd on
    ``port`` (same host key and environment, PAM authentication: logins.py)."""
    suffix = f"-{login}" if login else ""
    cfg = hostdir / f"sshd_config{suffix}"
    # the user's runtime directory, as logind makes /run/user/UID on a real host: per host
    # (rootless podman keeps its pause process and state there, container.py's tests)
    rundir = hostdir / "run"
    rundir.mkdir(mode=0o700, exist_ok=True)
    pw = pwd.getpwnam(user)
    os.chown(rundir, pw.pw_uid, pw.pw_gid)
    auth = (
        logins.sshd_auth(login)
        if login
        else (
            "UsePAM no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "AuthenticationMethods publickey\n"
        )
    )
    listen_lines = "\n".join(f"ListenAddress {a}" for a in listen)
    noforward = (
        f"Match LocalPort {noforward_port}\n"
        # DisableForwarding: every kind (TCP, stream-local, X11, agent), whatever else says
        "  DisableForwarding yes\n"
        "  AllowTcpForwarding no\n"
        "  AllowStreamLocalForwarding no\n"
        if noforward_port
        else ""
    )
    cfg.write_text(f"""\
# sshd of test host "{login or host.name}", started by the sshpyk test harness (not the system sshd)
Port {port or host.port}
{f"Port {noforward_port}" if noforward_port else ""}
{listen_lines}
HostKey {hostdir}/ssh_host_ed25519_key
PidFile {hostdir}/sshd{suffix}.pid
{auth}AllowTcpForwarding yes
AllowStreamLocalForwarding yes
StreamLocalBindUnlink yes
GatewayPorts no
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
# sshpyk multiplexes every kernel of a host on one master; stock sshd allows 10 sessions per
# connection.  "internal" keeps a small limit: sshpyk must spread its kernels over more
# connections there.
MaxSessions {4 if host.name == "internal" else 100}
MaxStartups 100:30:200
Subsystem sftp internal-sftp
SetEnv SPK_HOST={host.name} SPK_STATE={hostdir.parent.parent} XDG_RUNTIME_DIR={rundir}{
        f" {setenv}" if setenv else ""
    }
LogLevel VERBOSE
{extra}{noforward}""")
    return cfg


def _client_config(th: TestHosts, host_blocks: str, extra_star: str = "") -> None:
    th.ssh_config.write_text(f"""\
# Test ssh config: always used as `ssh -F {th.ssh_config}`, so ~/.ssh is never read.
{host_blocks}
Host *
  User {th.user}
  IdentityFile {th.client_key}
  IdentitiesOnly yes
  UserKnownHostsFile {th.known_hosts}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 5
  KexAlgorithms curve25519-sha256
  LogLevel ERROR
{extra_star}""")
    th.ssh_config.chmod(0o600)


def _start_sshd(argv: list[str], pidfile: Path, timeout: float = 5.0) -> int:
    run(argv, timeout=timeout + 5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pidfile.exists() and pidfile.read_text().strip():
            return int(pidfile.read_text().strip())
        time.sleep(0.01)
    raise HarnessError(f"sshd did not write {pidfile}")


def up_netns(prefix: str = "spk", index: int = 0) -> TestHosts:
    """Build the namespace topology from zero (tearing down leftovers of a crashed run)."""
    if not is_root():
        raise HarnessError("network-namespace test hosts need root")
    for tool in ("ip", SSHD, "ssh", "ssh-keygen", "unshare", "iptables"):
        if not shutil.which(tool):
            raise HarnessError(f"{tool} not found: run ./dev setup (apt packages)")
    if missing := logins.missing_tools():
        raise HarnessError(f"{', '.join(missing)} not found: run ./dev setup (apt packages)")
    state = state_dir(f"{prefix}{index}")
    down(state)
    # SAFETY FIRST: before any namespace exists, no packet for a test address may leave.
    run(["ip", "route", "replace", "unreachable", SAFETY_ROUTE])

    env = ensure_remote_env()
    uid, gid = _ensure_test_user()
    home = pwd.getpwnam(TEST_USER).pw_dir
    b, i, r = (_subnet(index, k) for k in range(3))
    th = TestHosts(
        mode="netns",
        prefix=prefix,
        index=index,
        state=state,
        user=TEST_USER,
        remote_python_prefix=str(env),
    )
    th.hosts = {
        "bastion": Host("bastion", "bastion", f"{b}.2", netns=f"{prefix}_bastion", uplink="eth0"),
        "internal": Host(
            "internal", "internal", f"{i}.2", netns=f"{prefix}_internal", uplink="eth0"
        ),
        "remote": Host("remote", "remote", f"{r}.2", netns=f"{prefix}_remote", uplink="eth0"),
    }
    state.mkdir(mode=0o755, parents=True)
    (state / "keys").mkdir(mode=0o700)
    th.save()

    pub = " ".join(_keygen(th.client_key, f"{prefix}-client"))
    known = []
    for h in th.hosts.values():
        d = state / "hosts" / h.name
        (d / "home" / ".ssh").mkdir(parents=True)
        hk = _keygen(d / "ssh_host_ed25519_key", f"{prefix}-host-{h.name}")
        known.append(f"{h.address} {' '.join(hk)}")
        if h.name == "remote":
            for port in (NOFORWARD_PORT, *logins.PORTS.values()):
                known.append(f"[{h.address}]:{port} {' '.join(hk)}")
        (d / "home" / ".ssh" / "authorized_keys").write_text(pub + "\n")
        if Path("/etc/skel").is_dir():
            shutil.copytree("/etc/skel", d / "home", dirs_exist_ok=True)
        for p in [d / "home", *(d / "home").rglob("*")]:
            os.chown(p, uid, gid, follow_symlinks=False)
        (d / "home").chmod(0o755)
        (d / "home" / ".ssh").chmod(0o700)
        (d / "home" / ".ssh" / "authorized_keys").chmod(0o600)
    th.known_hosts.write_text("\n".join(known) + "\n")

    def ns(n: str, *argv: str) -> None:
        run(["ip", "-n", n, *argv])

    for h in th.hosts.values():
        run(["ip", "netns", "add", h.netns])
        ns(h.netns, "link", "set", "lo", "up")
        run(["ip", "netns", "exec", h.netns, "sysctl", "-qw", "net.ipv4.ip_forward=0"])
    bn, inn, rn = th["bastion"].netns, th["internal"].netns, th["remote"].netns
    vb, vr = veth_names(prefix)
    # root <-> bastion
    run(["ip", "link", "add", vb, "type", "veth", "peer", "name", f"{prefix}-b1", "netns", bn])
    run(["ip", "addr", "add", f"{b}.1/24", "dev", vb])
    run(["ip", "link", "set", vb, "up"])
    ns(bn, "link", "set", f"{prefix}-b1", "name", "eth0")
    ns(bn, "addr", "add", f"{b}.2/24", "dev", "eth0")
    ns(bn, "link", "set", "eth0", "up")
    # bastion <-> internal: the root namespace has no route to this subnet
    ns(bn, "link", "add", "eth1", "type", "veth", "peer", "name", f"{prefix}-i1", "netns", inn)
    ns(bn, "addr", "add", f"{i}.1/24", "dev", "eth1")
    ns(bn, "link", "set", "eth1", "up")
    ns(inn, "link", "set", f"{prefix}-i1", "name", "eth0")
    ns(inn, "addr", "add", f"{i}.2/24", "dev", "eth0")
    ns(inn, "link", "set", "eth0", "up")
    # root <-> remote
    run(["ip", "link", "add", vr, "type", "veth", "peer", "name", f"{prefix}-r1", "netns", rn])
    run(["ip", "addr", "add", f"{r}.1/24", "dev", vr])
    run(["ip", "link", "set", vr, "up"])
    ns(rn, "link", "set", f"{prefix}-r1", "name", "eth0")
    ns(rn, "addr", "add", f"{r}.2/24", "dev", "eth0")
    ns(rn, "link", "set", "eth0", "up")

    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's compiled-in privsep dir
    if Path("/dev/fuse").exists():
        # libfuse3 opens /dev/fuse itself and does not fall back to fusermount3 on EACCES;
        # this VM boots it 0600 without udev, whose usual mode is 0666.
        os.chmod("/dev/fuse", 0o666)  # noqa: S103
    for h in th.hosts.values():
        d = state / "hosts" / h.name
        cfg = _sshd_config(
            h,
            d,
            user=TEST_USER,
            listen=[h.address, "127.0.0.1"],
            extra=f"PermitRootLogin no\nAllowUsers {TEST_USER}\nStrictModes yes\n",
            noforward_port=NOFORWARD_PORT if h.name == "remote" else None,
        )
        # own hostname (UTS ns) and own $HOME (bind mount in the private mount ns that
        # `ip netns exec` makes); sshd daemonizes and writes its PidFile.  `ip netns exec`
        # mounts a fresh /sys, without the cgroup mounts: the unified hierarchy goes there,
        # as on a cgroup v2 host (rootless podman's runtimes need one; containers.py).
        script = (
            f"hostname {h.name} && mount --bind {d}/home {home} && "
            "{ mount -t cgroup2 none /sys/fs/cgroup || true; } && "
            # shared, as systemd makes "/": a mount made later (sshfs) reaches the mount
            # namespaces made after it started (rootless podman's)
            "mount --make-rshared / && "
            f"exec {SSHD} -f {cfg} -E {d}/sshd.log"
        )
        h.sshd_pid = _start_sshd(
            ["ip", "netns", "exec", h.netns, "unshare", "--uts", "--", "/bin/sh", "-c", script],
            d / "sshd.pid",
        )
        th.save()
    _start_login_hosts(th, home)
    wait_tcp(th["bastion"].address, 22)
    wait_tcp(th["remote"].address, 22)
    for port in (NOFORWARD_PORT, *logins.PORTS.values()):
        wait_tcp(th["remote"].address, port)
    wait_tcp(th["internal"].address, 22, netns=bn)

    _client_config(
        th,
        f"""\
Host remote
  HostName {th["remote"].address}
Host bastion
  HostName {th["bastion"].address}
Host internal
  HostName {th["internal"].address}
  ProxyJump bastion
# the same host without the jump: must fail (no route from here)
Host internal-direct
  HostName {th["internal"].address}
  ConnectTimeout 2
Host noforward
  HostName {th["remote"].address}
  Port {NOFORWARD_PORT}
# login hosts: BatchMode (below) makes a plain ssh fail fast; a login says -o BatchMode=no
Host otp
  HostName {th["remote"].address}
  Port {logins.PORTS["otp"]}
  User {TEST_USER}
Host password
  HostName {th["remote"].address}
  Port {logins.PORTS["password"]}
  User {TEST_USER}
""",
    )
    th.save()
    _check(th)
    return th


def _start_login_hosts(th: TestHosts, home: str) -> None:
    """The sshds of ``otp`` and ``password`` in the remote's namespace, each under its own
    PAM service (the basename of its argv[0]: a link to sshd, see logins.py)."""
    remote = th["remote"]
    d = th.state / "hosts" / "remote"
    th.login_hosts = {
        kind: Host(kind, kind, remote.address, port, netns=remote.netns, uplink=remote.uplink)
        for kind, port in logins.PORTS.items()
    }
    th.save()  # before anything exists: a failed start is torn down from this record
    logins.prepare(th.state, TEST_USER, SSHD)
    for kind, h in th.login_hosts.items():
        cfg = _sshd_config(
            remote,
            d,
            user=TEST_USER,
            listen=[remote.address],
            extra=f"PermitRootLogin no\nAllowUsers {TEST_USER}\nStrictModes yes\n",
            login=kind,
            port=h.port,
        )
        script = (
            f"hostname {remote.name} && mount --bind {d}/home {home} && "
            f"exec {logins.sshd_link(th.state, kind)} -f {cfg} -E {d}/sshd-{kind}.log"
        )
        h.sshd_pid = _start_sshd(
            ["ip", "netns", "exec", h.netns, "unshare", "--uts", "--", "/bin/sh", "-c", script],
            d / f"sshd-{kind}.pid",
        )
        th.save()


def up_loopback(prefix: str = "spklo", index: int = 0) -> TestHosts:
    """sshd as the current user on 127.0.0.x: for contributors without root."""
    if not shutil.which(SSHD.rsplit("/", 1)[-1]) and not Path(SSHD).exists():
        raise HarnessError("sshd not found: install openssh-server")
    state = state_dir(f"{prefix}{index}")
    down(state)
    user = pwd.getpwuid(os.geteuid()).pw_name
    # As the same user the local environment's Python is usable "remotely" too.
    th = TestHosts(
        mode="loopback",
        prefix=prefix,
        index=index,
        state=state,
        user=user,
        remote_python_prefix=sys.prefix,
    )
    port = 22022 + index
    th.hosts = {
        "remote": Host("remote", "remote", "127.0.0.2", port),
        "bastion": Host("bastion", "bastion", "127.0.0.3", port),
        "internal": Host("internal", "internal", "127.0.0.4", port),
    }
    state.mkdir(mode=0o700, parents=True)
    (state / "keys").mkdir(mode=0o700)
    th.save()
    pub = " ".join(_keygen(th.client_key, f"{prefix}-client"))
    (state / "authorized_keys").write_text(pub + "\n")
    (state / "authorized_keys").chmod(0o600)
    known = []
    root_extra = "PermitRootLogin prohibit-password\n" if is_root() else ""
    if is_root():
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    for h in th.hosts.values():
        d = state / "hosts" / h.name
        d.mkdir(parents=True)
        hk = _keygen(d / "ssh_host_ed25519_key", f"{prefix}-host-{h.name}")
        known.append(f"[{h.address}]:{h.port} {' '.join(hk)}")
        if h.name == "remote":
            known.append(f"[{h.address}]:{port + 1000} {' '.join(hk)}")
        # internal only accepts what the bastion forwards (it connects from 127.0.0.1),
        # never the client itself (which binds 127.0.0.9).
        allow = f"AllowUsers {user}@127.0.0.1\n" if h.name == "internal" else f"AllowUsers {user}\n"
        cfg = _sshd_config(
            h,
            d,
            user=user,
            listen=[h.address],
            extra=f"AuthorizedKeysFile {state}/authorized_keys\nStrictModes no\n"
            + allow
            + root_extra,
            noforward_port=port + 1000 if h.name == "remote" else None,
        )
        h.sshd_pid = _start_sshd([SSHD, "-f", str(cfg), "-E", str(d / "sshd.log")], d / "sshd.pid")
        th.save()
    th.known_hosts.write_text("\n".join(known) + "\n")
    for h in th.hosts.values():
        wait_tcp(h.address, h.port)
    wait_tcp(th["remote"].address, port + 1000)
    _client_config(
        th,
        f"""\
Host remote
  HostName 127.0.0.2
Host bastion
  HostName 127.0.0.3
Host internal
  HostName 127.0.0.4
  ProxyJump bastion
Host internal-direct
  HostName 127.0.0.4
Host noforward
  HostName 127.0.0.2
  Port {port + 1000}
""",
        extra_star=f"  Port {port}\n  BindAddress 127.0.0.9\n",
    )
    th.save()
    _check(th)
    return th


def _check(th: TestHosts) -> None:
    name = th.identify("remote")
    if name != "remote":
        raise HarnessError(f"ssh remote landed on {name!r}")
    if th.identify("noforward") != "remote":
        raise HarnessError("ssh noforward did not land on the remote host")
    # BatchMode: the login hosts refuse at once, after the key for otp (partial success)
    for alias, method in (("otp", "keyboard-interactive"), ("password", "password")):
        if alias in th.login_hosts:
            out = th.ssh(alias, "true")
            if out.returncode != 255 or f"Permission denied ({method})" not in out.stderr:
                raise HarnessError(f"ssh {alias} in BatchMode: rc {out.returncode} {out.stderr}")
    py = f"{th.remote_python_prefix}/bin/python"
    probe = th.ssh("remote", shlex.join([py, "-c", "import ipykernel, jupyter_client"]))
    if probe.returncode != 0:
        raise HarnessError(f"remote python {py} unusable by {th.user}: {probe.stderr.strip()}")


def up(mode: str | None = None, prefix: str | None = None, index: int = 0) -> TestHosts:
    """Build the test hosts: ``netns`` when root, else ``loopback``; $SSHPYK_TEST_HOSTS wins."""
    mode = mode or os.environ.get("SSHPYK_TEST_HOSTS") or ("netns" if is_root() else "loopback")
    if mode == "netns":
        return up_netns(prefix or "spk", index)
    if mode == "loopback":
        return up_loopback(prefix or "spklo", index)
    raise HarnessError(f"unknown test host mode {mode!r} (netns or loopback)")


def down(state: Path) -> list[str]:
    """Tear down whatever the instance recorded in ``state`` left; return the leftovers."""
    from . import slurm  # builds on this module: imported when used, not at load time

    if not (state / "topology.json").exists():
        if state.exists():
            shutil.rmtree(state, ignore_errors=True)
        return []
    th = TestHosts.load(state)
    slurm.down(state)  # the Slurm hosts built onto this instance, if any
    # ssh ControlMasters started by tests (client side): ask them to exit, by socket
    # (not the sockets of kernels left in the hosts' home directories: those are no masters,
    # and one that accepts without answering would hold ssh up)
    homes = state / "hosts"
    for sock in state.rglob("*"):
        if sock.is_socket() and homes not in sock.parents:
            with contextlib.suppress(subprocess.TimeoutExpired):
                run(
                    ["ssh", "-F", str(th.ssh_config), "-S", str(sock), "-O", "exit", "x"],
                    check=False,
                    timeout=5,
                )
    kill_pids(th.pids)
    # by PID, when it still is ours (its argv[0] is the instance's link to sshd)
    ours = {p for p, _ in processes_mentioning(str(state))}
    kill_pids([h.sshd_pid for h in th.login_hosts.values() if h.sshd_pid in ours])
    if th.mode == "netns":
        logins.teardown(state, th.user)
    for target in reversed(procinfo.mount_points()):
        if target.startswith(str(state) + "/"):
            run(["umount", "-l", target], check=False)
    existing = set(netns_list())
    for h in th.hosts.values():
        if h.netns and h.netns in existing:
            # sshd, sessions, kernels, sshfs: everything inside our own namespace
            pids = run(["ip", "netns", "pids", h.netns], check=False).stdout.split()
            kill_pids(pids)
            run(["ip", "netns", "del", h.netns], check=False)
        elif h.sshd_pid:
            kill_pids([h.sshd_pid])
    for v in veth_names(th.prefix):
        run(["ip", "link", "del", v], check=False)
    # anything started with our state dir on its command line (helpers, clients)
    kill_pids([p for p, _ in processes_mentioning(str(state))])
    shutil.rmtree(state, ignore_errors=True)
    left = th.leftovers()
    # The unreachable route for 10.200.0.0/16 stays on purpose: it is harmless and keeps a
    # late packet for a test address from ever leaving the machine.
    return left
