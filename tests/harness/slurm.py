"""A real Slurm cluster on the namespace test hosts: the login host ``hpc`` and the compute
host ``node1``, built on demand on top of a netns instance (``topology.py``).

* ``hpc``: its own network namespace, hostname (UTS namespace) and root sshd like the other
  test hosts (key-only for ``sshpyktest``, alias ``hpc`` in the instance's ssh_config).
  slurmctld and the cluster's munged run here.  Its sshd sets ``SLURM_CONF``, so a plain
  ``ssh hpc sbatch ...`` finds the cluster; jobs inherit it.
* ``node1``: slurmd, on a subnet only ``hpc`` reaches (the root namespace has no route to
  it, as ``internal`` behind ``bastion``).
* ``$HOME`` of the test user is shared as on real clusters: one directory bind-mounted on
  it in both hosts' mount namespaces (slurmd is started inside its one, so slurmstepd and
  the jobs see the same home).

Slurm and munge come from Debian's packages but never touch their system setup: a private
munged (own key and socket) and every Slurm file (config, state, spool, logs, pid files)
under ``<state>/slurm``.  No slurmdbd: ``sacct`` does not work, ``scontrol show job`` does.

Teardown ends everything by namespace (``ip netns pids``) and PID, deletes the namespaces
and the state, and takes the alias out of the instance's ssh config; :func:`leftovers`
proves it.  :func:`down` also runs from ``topology.down``, so a crashed run is cleaned by
the next ``python -m harness down``.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .proc import HarnessError, kill_pids, pid_alive, run
from .topology import (
    SAFETY_ROUTE,
    SSHD,
    TEST_USER,
    Host,
    TestHosts,
    _keygen,
    _sshd_config,
    netns_list,
    wait_tcp,
)

LOGIN = "hpc"
NODES = ("node1",)
DAEMONS = ("munged", "slurmctld", "slurmd", "slurmstepd")
TOOLS = ("slurmctld", "slurmd", "sbatch", "srun", "scontrol", "/usr/sbin/munged", "nsenter")
# ssh_config block of the login host, between these markers (down() takes it out again)
BEGIN, END = "# >>> slurm login host (harness/slurm.py)", "# <<< slurm login host"
FIELD = re.compile(r"(?:^|\s)([A-Za-z][\w:/]*)=")


def _subnet(index: int) -> str:
    """The instance's fourth /24 (``topology._subnet`` uses k = 0..2): ``hpc``'s uplink in
    its lower half, the node network in its upper half (no route from the root ns)."""
    return f"10.200.{index * 4 + 3}"


def slurm_dir(state: Path) -> Path:
    return state / "slurm"


def netns_names(prefix: str) -> list[str]:
    return [f"{prefix}_{LOGIN}", *(f"{prefix}_{n}" for n in NODES)]


def veth_name(prefix: str) -> str:
    return f"{prefix}-h0"


def parse_fields(line: str) -> dict[str, str]:
    """``Key=Value Key=Value`` (one line of ``scontrol show ... -o``) as a dict; a value may
    hold spaces (it runs up to the next ``Key=``)."""
    keys = list(FIELD.finditer(line))
    ends = [k.start() for k in keys[1:]] + [len(line)]
    return {k.group(1): line[k.end() : end].strip() for k, end in zip(keys, ends, strict=False)}


@dataclass
class SlurmHosts:
    """A built cluster: ``ssh -F ssh_config hpc`` is the login host."""

    prefix: str
    index: int
    state: str  # the netns instance's state dir
    user: str
    remote_python_prefix: str
    ssh_config: str
    login_address: str  # hpc, seen from the root namespace
    login_node_address: str  # hpc on the node network (SlurmctldHost)
    node_addresses: dict[str, str]
    ctld_port: int
    slurmd_port: int
    login_alias: str = LOGIN
    node_names: list[str] = field(default_factory=lambda: list(NODES))
    partitions: list[str] = field(default_factory=lambda: ["debug", "short"])
    pids: dict[str, int] = field(default_factory=dict)  # sshd, munged, slurmctld, slurmd

    # ---- paths -----------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        return slurm_dir(Path(self.state))

    @property
    def conf(self) -> Path:
        """slurm.conf (hpc's sessions have it as ``$SLURM_CONF``)."""
        return self.dir / "slurm.conf"

    @property
    def hostdir(self) -> Path:
        """hpc's sshd files, beside the other hosts' (``SPK_STATE`` of its sessions is the
        instance's state dir, as on the other hosts)."""
        return Path(self.state) / "hosts" / LOGIN

    @property
    def home(self) -> Path:
        """The test user's shared ``$HOME`` as seen from here (the root namespace): under
        ``hosts/`` like the other homes (topology.down never takes a socket there for an ssh
        master's)."""
        return self.hostdir / "home"

    @property
    def login_netns(self) -> str:
        return f"{self.prefix}_{LOGIN}"

    # ---- use -------------------------------------------------------------------------------
    def run_login(self, cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """``cmd`` (a shell command line) as the test user on hpc, over ssh."""
        argv = ["ssh", "-F", self.ssh_config, "--", LOGIN, cmd]
        return run(argv, check=False, timeout=timeout)

    def root_on(self, host: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """``argv`` as root on ``hpc`` or a node: in its namespaces (net, mount: the shared
        home, UTS), with ``SLURM_CONF`` set."""
        pid = self.pids["sshd" if host == LOGIN else f"slurmd:{host}"]
        ns = ["nsenter", "-t", str(pid), "-n", "-m", "-u", "--"]
        return run([*ns, "env", f"SLURM_CONF={self.conf}", *argv], check=False, timeout=timeout)

    def scontrol_root(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """``scontrol ARGS`` as root on hpc (Slurm's admin: ``update``, ``show``, ...)."""
        return self.root_on(LOGIN, "scontrol", *args, timeout=timeout)

    def squeue_json(self) -> dict[str, dict[str, str]]:
        """Every job slurmctld knows (also ended ones, for MinJobAge): job id -> the fields
        of ``scontrol show job -o`` (``JobState``, ``Reason``, ``NodeList``, ...)."""
        out = self.scontrol_root("show", "job", "-o")
        if out.returncode != 0:
            if "No jobs in the system" in out.stdout + out.stderr:
                return {}
            raise HarnessError(f"scontrol show job: {out.stderr.strip()}")
        jobs = {}
        for line in out.stdout.splitlines():
            if line.strip():
                f = parse_fields(line)
                jobs[f.get("JobId", "")] = f
        return jobs

    def job(self, job_id: str | int) -> dict[str, str]:
        """The fields of ``scontrol show job -o J`` ({} when slurmctld does not know it)."""
        out = self.scontrol_root("show", "job", "-o", str(job_id))
        if out.returncode != 0 or not out.stdout.strip():
            return {}
        return parse_fields(out.stdout.strip().splitlines()[0])

    def node(self, name: str = "node1") -> dict[str, str]:
        """The fields of ``scontrol show node -o NAME`` (``State``, ``CPUAlloc``, ...)."""
        out = self.scontrol_root("show", "node", "-o", name)
        if out.returncode != 0:
            raise HarnessError(f"scontrol show node {name}: {out.stderr.strip()}")
        return parse_fields(out.stdout.strip())

    def wait_job(self, job_id: str | int, states, timeout: float = 30) -> dict[str, str]:
        """Poll until the job's ``JobState`` is one of ``states``; its fields."""
        want = {states} if isinstance(states, str) else set(states)
        deadline = time.monotonic() + timeout
        while True:
            j = self.job(job_id)
            if j.get("JobState") in want:
                return j
            if time.monotonic() > deadline:
                raise HarnessError(f"job {job_id} not {want} within {timeout}s: {j}")
            time.sleep(0.2)

    def sbatch(self, args: str, timeout: float = 30) -> str:
        """``sbatch --parsable ARGS`` as the test user on hpc; the job id."""
        out = self.run_login(f"sbatch --parsable {args}", timeout=timeout)
        if out.returncode != 0:
            raise HarnessError(f"sbatch {args}: {out.stderr.strip()}")
        return out.stdout.strip().split(";")[0]

    def occupy_node(self, time_limit: int = 30, timeout: float = 30) -> str:
        """Submit a blocker job that takes the whole node and wait until it runs: the next job
        stays PENDING with reason Resources until :meth:`release`, with an estimated start
        (squeue --start) at the blocker's end, ``time_limit`` minutes on.  Its job id."""
        args = f"--exclusive -N1 -t {int(time_limit)} -J spk-blocker -o /dev/null"
        jid = self.sbatch(f"{args} --wrap 'sleep 3600'")
        self.wait_job(jid, "RUNNING", timeout)
        return jid

    def release(self, job_id: str | int, timeout: float = 30) -> None:
        """Cancel the job (``scancel`` as the test user) and wait until it has left the node."""
        out = self.run_login(f"scancel {int(job_id)}")
        if out.returncode != 0:
            raise HarnessError(f"scancel {job_id}: {out.stderr.strip()}")
        self.wait_job(job_id, ("CANCELLED", "COMPLETED", "FAILED", "TIMEOUT"), timeout)

    # ---- persistence -----------------------------------------------------------------------
    def save(self) -> None:
        (self.dir / "slurm.json").write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, state: Path) -> SlurmHosts:
        return cls(**json.loads((slurm_dir(state) / "slurm.json").read_text()))


# ==== building ================================================================================


def _slurm_conf(sh: SlurmHosts) -> str:
    d = sh.dir
    nodes = "\n".join(
        f"NodeName={n} NodeAddr={a} CPUs=2 RealMemory=1000 State=UNKNOWN"
        for n, a in sh.node_addresses.items()
    )
    return f"""\
# Slurm of the sshpyk test hosts ({sh.prefix}{sh.index}), made by tests/harness/slurm.py
ClusterName={sh.prefix.lower()}{sh.index}
SlurmctldHost={LOGIN}({sh.login_node_address})
SlurmctldPort={sh.ctld_port}
SlurmdPort={sh.slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge/socket
StateSaveLocation={d}/ctld
SlurmdSpoolDir={d}/spool/%n
SlurmctldPidFile={d}/run/slurmctld.pid
SlurmdPidFile={d}/run/slurmd-%n.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={d}/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# the node's CPUs and memory are taken from here, whatever the machine has
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
# estimated start times (squeue --start) after a second, not after the default 30 s
SchedulerParameters=bf_interval=1
MpiDefault=none
ReturnToService=2
# a job past its time limit: SIGTERM, 2 s later SIGKILL.  slurmctld itself looks for expired
# limits only every 30 s (a compiled-in period in 22.05, no option changes it)
KillWait=2
OverTimeLimit=0
MinJobAge=600
{nodes}
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=short Nodes=ALL MaxTime=5 State=UP
"""


def up(th: TestHosts) -> SlurmHosts:
    """Build the cluster onto the netns instance ``th`` (tearing down a previous one)."""
    if th.mode != "netns":
        raise HarnessError("the Slurm test hosts need the network-namespace test hosts (root)")
    for tool in TOOLS:
        if not shutil.which(tool):
            raise HarnessError(f"{tool} not found: run ./dev setup (apt packages)")
    down(th.state)
    # SAFETY FIRST (again: it stays from topology.up): no test packet leaves the machine
    run(["ip", "route", "replace", "unreachable", SAFETY_ROUTE])
    net = _subnet(th.index)
    sh = SlurmHosts(
        prefix=th.prefix,
        index=th.index,
        state=str(th.state),
        user=TEST_USER,
        remote_python_prefix=th.remote_python_prefix,
        ssh_config=str(th.ssh_config),
        login_address=f"{net}.2",
        login_node_address=f"{net}.129",
        node_addresses={n: f"{net}.{130 + i}" for i, n in enumerate(NODES)},
        ctld_port=6817 + 2 * th.index,
        slurmd_port=6818 + 2 * th.index,
    )
    d = sh.dir
    d.mkdir(mode=0o755)
    sh.save()  # before anything exists: a failed build is torn down from this record
    for sub in ("ctld", "spool", "run", "log"):
        (d / sub).mkdir(mode=0o755)
    sh.hostdir.mkdir(mode=0o755, parents=True)
    _files(sh, th)
    _network(sh)
    _start(sh)
    _check(sh)
    return sh


def _files(sh: SlurmHosts, th: TestHosts) -> None:
    d = sh.dir
    pw = pwd.getpwnam(TEST_USER)
    munge = pwd.getpwnam("munge")
    # the shared home: the instance's client key logs in; /etc/skel as useradd would
    home = sh.home
    (home / ".ssh").mkdir(parents=True)
    if Path("/etc/skel").is_dir():
        shutil.copytree("/etc/skel", home, dirs_exist_ok=True)
    pub = th.client_key.with_suffix(".pub").read_text()
    (home / ".ssh" / "authorized_keys").write_text(pub)
    for p in [home, *home.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
    home.chmod(0o755)
    (home / ".ssh").chmod(0o700)
    (home / ".ssh" / "authorized_keys").chmod(0o600)
    # private munge: its own key, socket, pid, log and seed in a dir munged owns (0755: the
    # test user's sbatch must reach the socket; munged refuses a dir others can write)
    m = d / "munge"
    m.mkdir(mode=0o755)
    key = m / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    for p in (m, key):
        os.chown(p, munge.pw_uid, munge.pw_gid)
    m.chmod(0o755)
    # one /etc/hosts for the cluster's hosts (bind-mounted in their mount namespaces)
    names = [f"{sh.login_node_address} {LOGIN}"]
    names += [f"{a} {n}" for n, a in sh.node_addresses.items()]
    (d / "hosts").write_text(
        "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n" + "\n".join(names) + "\n"
    )
    (d / "plugstack.conf").write_text("# no SPANK plugins (not the system's plugstack.conf)\n")
    sh.conf.write_text(_slurm_conf(sh))
    # hpc's sshd: the same as the other test hosts', plus SLURM_CONF for every session
    hk = _keygen(sh.hostdir / "ssh_host_ed25519_key", f"{sh.prefix}-host-{LOGIN}")
    host = Host(LOGIN, LOGIN, sh.login_address, netns=sh.login_netns, uplink="eth0")
    _sshd_config(
        host,
        sh.hostdir,
        user=TEST_USER,
        listen=[sh.login_address, "127.0.0.1"],
        extra=f"PermitRootLogin no\nAllowUsers {TEST_USER}\nStrictModes yes\n",
        setenv=f"SLURM_CONF={sh.conf}",
    )
    with open(th.known_hosts, "a") as f:
        f.write(f"{sh.login_address} {' '.join(hk)}\n")
    cfg = Path(sh.ssh_config)
    text = cfg.read_text()
    block = f"{BEGIN}\nHost {LOGIN}\n  HostName {sh.login_address}\n{END}\n"
    # before "Host *" (where User, IdentityFile and the known hosts are set for every alias)
    cfg.write_text(text.replace("\nHost *\n", f"\n{block}Host *\n", 1))


def _network(sh: SlurmHosts) -> None:
    hn, nodes = sh.login_netns, {n: f"{sh.prefix}_{n}" for n in NODES}
    net = _subnet(sh.index)

    def ns(n: str, *argv: str) -> None:
        run(["ip", "-n", n, *argv])

    for n in [hn, *nodes.values()]:
        run(["ip", "netns", "add", n])
        ns(n, "link", "set", "lo", "up")
        run(["ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv4.ip_forward=0"])
    # root <-> hpc: the lower half of the subnet
    vh = veth_name(sh.prefix)
    run(["ip", "link", "add", vh, "type", "veth", "peer", "name", f"{sh.prefix}-h1", "netns", hn])
    run(["ip", "addr", "add", f"{net}.1/25", "dev", vh])
    run(["ip", "link", "set", vh, "up"])
    ns(hn, "link", "set", f"{sh.prefix}-h1", "name", "eth0")
    ns(hn, "addr", "add", f"{sh.login_address}/25", "dev", "eth0")
    ns(hn, "link", "set", "eth0", "up")
    # hpc <-> nodes: the upper half, which the root namespace has no route to
    ns(hn, "link", "add", "br0", "type", "bridge")
    ns(hn, "addr", "add", f"{sh.login_node_address}/25", "dev", "br0")
    ns(hn, "link", "set", "br0", "up")
    for i, (name, n) in enumerate(nodes.items()):
        peer = f"{sh.prefix}-n{i}"
        ns(hn, "link", "add", f"n{i}", "type", "veth", "peer", "name", peer, "netns", n)
        ns(hn, "link", "set", f"n{i}", "master", "br0")
        ns(hn, "link", "set", f"n{i}", "up")
        ns(n, "link", "set", peer, "name", "eth0")
        ns(n, "addr", "add", f"{sh.node_addresses[name]}/25", "dev", "eth0")
        ns(n, "link", "set", "eth0", "up")


def _wait_pidfile(path: Path, what: str, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            pid = 0
        if pid and pid_alive(pid):
            return pid
        time.sleep(0.02)
    raise HarnessError(f"{what} did not come up (no live pid in {path}); see {path.parent}")


def _start(sh: SlurmHosts) -> None:
    d, home = sh.dir, pwd.getpwnam(TEST_USER).pw_dir
    env = {**os.environ, "SPK_STATE": sh.state}  # processes_mentioning() finds them by it
    # Each host's mounts live in the private mount namespace `ip netns exec` makes: the daemons
    # started in the same `sh -c` share it (munged, slurmctld and sshd on hpc; slurmd and
    # through it slurmstepd and the jobs on node1).
    mounts = f"mount --bind {sh.home} {home} && mount --bind {d}/hosts /etc/hosts"
    m = d / "munge"
    munged = shlex.join(
        [
            "runuser", "-u", "munge", "--", "/usr/sbin/munged",
            f"--socket={m}/socket", f"--key-file={m}/munge.key", f"--pid-file={m}/munged.pid",
            f"--log-file={m}/munged.log", f"--seed-file={m}/munged.seed",
        ]
    )  # fmt: skip
    script = (
        f"set -e; hostname {LOGIN}; {mounts}; {munged}; "
        f"slurmctld -f {sh.conf}; exec {SSHD} -f {sh.hostdir}/sshd_config -E {sh.hostdir}/sshd.log"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    argv = ["ip", "netns", "exec", sh.login_netns, "unshare", "--uts", "--", "sh", "-c", script]
    run(argv, timeout=30, env=env)
    sh.pids["munged"] = _wait_pidfile(m / "munged.pid", "munged")
    sh.pids["slurmctld"] = _wait_pidfile(d / "run" / "slurmctld.pid", "slurmctld")
    sh.pids["sshd"] = _wait_pidfile(sh.hostdir / "sshd.pid", "hpc's sshd")
    sh.save()
    for name in NODES:
        (d / "spool" / name).mkdir(mode=0o755)
        # Not `ip netns exec`: it mounts a fresh /sys, without the cgroup file systems that
        # slurmd's cgroup plugin must find at start (even with proctrack/linuxproc, where it
        # creates no cgroup); the mount namespace is as private (unshare: propagation private).
        script = f"set -e; hostname {name}; {mounts}; exec slurmd -f {sh.conf} -N {name}"
        argv = ["nsenter", f"--net=/run/netns/{sh.prefix}_{name}", "--"]
        argv += ["unshare", "--mount", "--uts", "--propagation", "private", "--"]
        run([*argv, "sh", "-c", script], timeout=30, env=env)
        sh.pids[f"slurmd:{name}"] = _wait_pidfile(d / "run" / f"slurmd-{name}.pid", "slurmd")
        sh.save()
    wait_tcp(sh.login_address, 22)


def _check(sh: SlurmHosts, timeout: float = 20) -> None:
    """Every node idle, and ``ssh hpc`` lands on hpc with the cluster's config."""
    deadline = time.monotonic() + timeout
    for name in NODES:
        while (state := sh.node(name).get("State", "")) != "IDLE":
            if time.monotonic() > deadline:
                raise HarnessError(f"{name} is {state!r}, not IDLE; see {sh.dir}/log")
            time.sleep(0.1)
    out = sh.run_login('echo "$SPK_HOST $(hostname) $SLURM_CONF"')
    if out.stdout.split() != ["hpc", LOGIN, str(sh.conf)]:
        raise HarnessError(f"ssh {LOGIN}: rc {out.returncode} {out.stdout!r} {out.stderr!r}")


# ==== teardown ================================================================================


def down(state: Path) -> list[str]:
    """End the instance's cluster (if any) and remove it; return what is left of it."""
    d = slurm_dir(state)
    if not (d / "slurm.json").exists():
        shutil.rmtree(d, ignore_errors=True)
        return []
    sh = SlurmHosts.load(state)
    existing = set(netns_list())
    # the nodes first (slurmd, slurmstepd, the jobs), then hpc (sessions, sshd, slurmctld,
    # munged): everything inside our own namespaces
    for n in reversed(netns_names(sh.prefix)):
        if n in existing:
            kill_pids(run(["ip", "netns", "pids", n], check=False).stdout.split())
            run(["ip", "netns", "del", n], check=False)
    # strays outside them (by PID, when they still are ours)
    kill_pids([p for p, _ in _daemons(state)])
    run(["ip", "link", "del", veth_name(sh.prefix)], check=False)
    for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
        if line.split()[1].startswith((f"{d}/", f"{sh.hostdir}/")):
            run(["umount", "-l", line.split()[1]], check=False)
    _forget_login_host(state, sh)
    shutil.rmtree(sh.hostdir, ignore_errors=True)
    shutil.rmtree(d, ignore_errors=True)
    return leftovers(sh.prefix, state)


def _forget_login_host(state: Path, sh: SlurmHosts) -> None:
    cfg = Path(sh.ssh_config)
    if cfg.exists():
        text = cfg.read_text()
        start, end = text.find(BEGIN), text.find(END)
        if start >= 0 and end > start:
            cfg.write_text(text[:start] + text[end + len(END) + 1 :])
    kh = state / "known_hosts"
    if kh.exists():
        lines = kh.read_text().splitlines(keepends=True)
        kh.write_text("".join(x for x in lines if not x.startswith(f"{sh.login_address} ")))


def _daemons(state: Path) -> list[tuple[int, str]]:
    """munged, slurmctld, slurmd and slurmstepd processes of this instance, and hpc's sshd:
    its Slurm dir on their command line or as their working directory (slurmstepd's: slurmd
    works in the log dir; its environment is a fresh one), or the instance's state in their
    environment (the harness starts the daemons with ``SPK_STATE``)."""
    found = []
    marker = f"SPK_STATE={state}".encode()
    mine, hpc = str(slurm_dir(state)), f"{state}/hosts/{LOGIN}/"
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            comm = (p / "comm").read_text().strip()
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (p / "environ").read_bytes().split(b"\0")
            cwd = os.readlink(p / "cwd")
        except OSError:
            continue
        ours = mine in cmd or hpc in cmd or marker in env or cwd.startswith(mine)
        if ours and (comm in DAEMONS or hpc in cmd) and pid_alive(int(p.name)):
            found.append((int(p.name), f"{comm}: {cmd[:60]}"))
    return found


def leftovers(prefix: str, state: Path) -> list[str]:
    """What is still there of the instance's cluster: [] means fully torn down."""
    left = [f"netns {n}" for n in netns_names(prefix) if n in set(netns_list())]
    links = run(["ip", "-o", "link"], check=False).stdout
    vh = veth_name(prefix)
    if f" {vh}@" in links or f" {vh}:" in links:
        left.append(f"link {vh}")
    dirs = [slurm_dir(state), state / "hosts" / LOGIN]
    mounts = [x.split()[1] for x in Path("/proc/self/mounts").read_text().splitlines()]
    left += [f"mount {m}" for m in mounts if any(m.startswith(f"{d}/") for d in dirs)]
    left += [f"pid {p} ({what})" for p, what in _daemons(state)]
    left += [f"dir {d}" for d in dirs if d.exists()]
    return left
