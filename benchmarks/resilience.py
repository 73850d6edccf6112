"""Resilience report, side by side in one run: sshpyk (ours) and the reference sshpyk 1.25
from PyPI, through the same faults on the real test hosts.

Run as root (it builds its own namespace test hosts and cuts their links with iptables):

    .venv/bin/python benchmarks/resilience.py [--only idle_cut,server_killed]

Scenarios, one kernel on ``remote`` each, every one starting with no ssh master:

1. a 30 s link cut while the kernel is idle, then ``x += 1; print(x)``
2. a 30 s link cut while a cell prints a line a second
3. ``kill -9`` of the remote kernel: does the kernel manager's auto-restarter notice?
4. the Jupyter server is ``kill -9``'d: does the remote kernel stay, end by itself, re-attach?
5. a launch while sshd is down (connection refused), and while the host's link is cut

Each implementation runs ``resilience_worker.py`` under its own Python; the worker asks for
faults and counts with one line on stdout and waits for the answer on stdin.  Kernelspecs
come from ``kernel_lifecycle.prepare`` (so 1.25 is configured exactly as there), with
variants derived from them.  Prints a markdown table and the raw results; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from helpers import remote_procs  # noqa: E402
from kernel_lifecycle import prepare, provisioned, write_spec  # noqa: E402

from harness import Faults, down, up  # noqa: E402
from harness.topology import kill_pids, pid_alive  # noqa: E402

WORKER = HERE / "resilience_worker.py"
# Our own harness instance (10.200.16-18.x): the test suite uses spk/0 meanwhile.
PREFIX, INDEX = "spr", 4
LEASE = 15  # our lease_timeout for the "server killed" scenario
ORPHAN_CHECKS = (5.0, 25.0)  # seconds after the kill -9 of the server
WORKER_TIMEOUT = 400.0
REFUSED_PORT = 2  # nothing listens there on the test host: connection refused


@dataclass
class Impl:
    label: str
    python: Path
    jpath: Path
    ref: bool
    configs: list[str] = field(default_factory=list)  # ssh configs its kernelspecs use
    aliases: list[str] = field(default_factory=list)

    @property
    def runtime(self) -> Path:
        return self.jpath / "runtime"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "JUPYTER_PATH": str(self.jpath),
            "JUPYTER_RUNTIME_DIR": str(self.runtime),
            # no user kernelspecs or config may leak in
            "JUPYTER_DATA_DIR": str(self.jpath / "data"),
            "JUPYTER_CONFIG_DIR": str(self.jpath / "config"),
            "PYTHONWARNINGS": "ignore",
        }


# ---- kernelspecs ---------------------------------------------------------------------------


def variant(impl: Impl, name: str, **overrides) -> str:
    """A copy of ``bench`` (as kernel_lifecycle wrote it) with provisioner config changes."""
    spec = json.loads((impl.jpath / "kernels" / "bench" / "kernel.json").read_text())
    cfg = spec["metadata"]["kernel_provisioner"]["config"]
    write_spec(impl.jpath, name, provisioned({**cfg, **overrides}, spec["display_name"]))
    return name


def bench_config(impl: Impl) -> dict:
    spec = json.loads((impl.jpath / "kernels" / "bench" / "kernel.json").read_text())
    return spec["metadata"]["kernel_provisioner"]["config"]


def make_impls(th, tmp: Path) -> list[Impl]:
    prepared = prepare(th, tmp)
    ours = Impl("sshpyk", *prepared["sshpyk (ours)"], ref=False)
    ref = Impl("sshpyk 1.25", *prepared["sshpyk 1.25"], ref=True)
    addr = th["remote"].address
    down_block = f"  HostName {addr}\n  Port {REFUSED_PORT}\n"

    # Ours: the harness config plus an alias whose port refuses connections.
    down_cfg = tmp / "down_ssh_config"
    down_cfg.write_text(th.ssh_config.read_text() + "Host remote-down\n" + down_block)
    down_cfg.chmod(0o600)
    ours.configs = [str(th.ssh_config), str(down_cfg)]
    ours.aliases = ["remote", "remote-down"]
    variant(ours, "lease", lease_timeout=LEASE)
    variant(ours, "down", ssh_host_alias="remote-down", ssh_config=str(down_cfg), launch_timeout=10)
    variant(ours, "launch10", launch_timeout=10)

    # 1.25 wants ControlMaster auto under a dedicated alias, as kernel_lifecycle's ref-remote.
    ref_cfg = Path(bench_config(ref)["ssh_config"])
    ref_cfg.write_text(
        ref_cfg.read_text()
        + "Host ref-down\n"
        + down_block
        + f"  ControlMaster auto\n  ControlPath {th.state}/refcm-%C\n  ControlPersist 10m\n"
    )
    ref.configs = [str(ref_cfg)]
    ref.aliases = ["ref-remote", "ref-down"]
    variant(ref, "down", ssh_host_alias="ref-down", launch_timeout=10)
    variant(ref, "launch10", launch_timeout=10)
    for impl in (ours, ref):
        impl.runtime.mkdir(mode=0o700, exist_ok=True)
    return [ours, ref]


# ---- what runs where -----------------------------------------------------------------------


def pids_of(lines: list[str]) -> list[int]:
    return [int(p.split()[0]) for p in lines]


def remote_kernels(th) -> list[int]:
    """The remote ipykernel processes of this harness instance (by its sshd's markers)."""
    return pids_of([p for p in remote_procs(th) if "ipykernel_launcher" in p])


def ssh_procs(configs: list[str]) -> dict[int, str]:
    """Local ssh processes using one of ``configs``: pid -> command line."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv[0].endswith("ssh") and any(c in argv for c in configs) and pid_alive(int(d.name)):
            found[int(d.name)] = " ".join(argv).strip()
    return found


def masters(impl: Impl) -> dict[int, list[str]]:
    """The impl's ControlMasters: pid -> argv that makes it exit.  Ours are started with
    ``-o ControlMaster=yes``; 1.25's fork off an ordinary command (ControlMaster auto), so
    only the master itself can tell its pid."""
    found: dict[int, list[str]] = {}
    if not impl.ref:
        for pid, cmd in ssh_procs(impl.configs).items():
            words = cmd.split()
            if "ControlMaster=yes" in words:
                path = next(w for w in words if w.startswith("ControlPath="))
                cfg = words[words.index("-F") + 1]
                found[pid] = ["ssh", "-F", cfg, "-o", path, "-O", "exit", words[-1]]
        return found
    for alias in impl.aliases:
        check = ["ssh", "-F", impl.configs[0], "-O", "check", alias]
        out = subprocess.run(check, capture_output=True, text=True, timeout=10)
        m = re.search(r"Master running \(pid=(\d+)\)", out.stderr)
        if m:
            found[int(m.group(1))] = [*check[:-2], "exit", alias]
    return found


def local_left(impl: Impl) -> list[str]:
    ms = masters(impl)
    return [cmd for pid, cmd in ssh_procs(impl.configs).items() if pid not in ms]


def exit_masters(impl: Impl) -> None:
    for argv in masters(impl).values():
        subprocess.run(argv, capture_output=True, timeout=10)


def clean_slate(th, impl: Impl) -> list[str]:
    """End whatever a scenario left (remote process groups, local ssh, masters), so the
    next one starts from nothing; returns what had to be ended."""
    left = remote_procs(th)
    pgids = set()
    for pid in pids_of(left):
        try:
            pgids.add(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2]))
        except (OSError, IndexError, ValueError):
            continue
    for pgid in pgids:
        th.ssh("remote", f"kill -9 -- -{pgid} 2>/dev/null; true")
    stray = [pid for pid in ssh_procs(impl.configs) if pid not in masters(impl)]
    kill_pids(stray)
    exit_masters(impl)
    time.sleep(0.5)
    return left + [f"local ssh {p}" for p in stray]


# ---- one worker run ------------------------------------------------------------------------


class Worker:
    """One scenario for one implementation: the worker process plus the answers to its
    requests (faults, /proc snapshots, counts)."""

    def __init__(self, th, faults: Faults, impl: Impl, scenario: str, kernel: str, log: Path):
        self.th, self.faults, self.impl = th, faults, impl
        self.scenario, self.kernel, self.log = scenario, kernel, log
        self.extra: dict = {}
        self.proc: subprocess.Popen | None = None

    def answer(self, event: str) -> dict:
        if event == "cut":
            self.faults.cut("remote")
            return {}
        if event == "restore":
            self.faults.restore("remote")
            return {}
        if event == "snap":
            kernels = remote_kernels(self.th)
            self.extra.setdefault("snaps", []).append(kernels)
            return {"kernels": kernels}
        if event == "kill_kernel":
            killed = remote_kernels(self.th)
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
            return {"killed": killed}
        if event == "count":
            self.extra["remote_left"] = remote_procs(self.th)
            self.extra["local_left"] = local_left(self.impl)
            return {}
        raise ValueError(f"unknown worker request {event!r}")

    def run(self) -> dict:
        """Drive the worker to its end, or to its ``kill_me`` (then it is killed -9)."""
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                [str(self.impl.python), str(WORKER), self.scenario, self.kernel],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=self.impl.env(),
            )
        watchdog = threading.Timer(WORKER_TIMEOUT, kill_pids, args=([self.proc.pid],))
        watchdog.daemon = True
        watchdog.start()
        result: dict | None = None
        try:
            for line in self.proc.stdout:
                if line.startswith("RESULT "):
                    result = json.loads(line[len("RESULT ") :])
                elif line.startswith("@"):
                    event = line[1:].split(" ", 1)[0].strip()
                    if event == "kill_me":
                        self.extra["killed_at"] = time.monotonic()
                        os.kill(self.proc.pid, signal.SIGKILL)  # the "server" dies
                        break
                    self.proc.stdin.write(json.dumps(self.answer(event)) + "\n")
                    self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        finally:
            watchdog.cancel()
            self.faults.clear()  # whatever happened, the link is back
        if result is None and "killed_at" not in self.extra:
            tail = self.log.read_text(errors="replace")[-1500:]
            result = {"error": f"worker exited {self.proc.returncode} without a result: {tail}"}
        return {**(result or {}), **self.extra}


# ---- scenario 4: the server is killed ------------------------------------------------------


def sshpyk_cli(impl: Impl, *args: str) -> subprocess.CompletedProcess:
    exe = impl.python.parent / "sshpyk"
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=90, env=impl.env()
    )


def server_killed(th, faults: Faults, impl: Impl, tmp: Path) -> dict:
    kernel = "bench" if impl.ref else "lease"
    w = Worker(th, faults, impl, "server_killed", kernel, tmp / f"{impl.label}-server.log")
    res = w.run()
    if "killed_at" not in res:
        return res
    t_kill = res.pop("killed_at")
    victims = res["snaps"][-1]

    def alive() -> bool:
        return any(pid_alive(p) for p in victims)

    def at(seconds: float) -> None:
        time.sleep(max(0.0, t_kill + seconds - time.monotonic()))

    at(ORPHAN_CHECKS[0])
    res["alive_at_5s"] = alive()
    res["local_left_at_5s"] = local_left(impl)
    if not impl.ref:
        ps = sshpyk_cli(impl, "ps", "--json")
        listed = json.loads(ps.stdout)["kernels"] if ps.returncode == 0 else []
        res["ps_orphan_alive"] = any(k["orphan"] and k["alive"] for k in listed)
    # when the kernel ends by itself, if it does, until the last check
    while time.monotonic() < t_kill + ORPHAN_CHECKS[1] and "gone_after_s" not in res:
        if not alive():
            res["gone_after_s"] = time.monotonic() - t_kill
        time.sleep(0.25)
    at(ORPHAN_CHECKS[1])
    res["alive_at_25s"] = alive()
    res["remote_left"] = remote_procs(th)
    res["local_left"] = local_left(impl)
    if not impl.ref:
        r = sshpyk_cli(impl, "reap", "remote", "--ssh-config", str(th.ssh_config))
        m = re.search(r"(\d+) reaped on", r.stdout)
        res["reaped"] = int(m.group(1)) if m else f"reap failed: {(r.stderr or r.stdout)[-200:]}"
    else:
        # 1.25 leaves its provisioner's persistent file behind: its one way back in is
        # `sshpyk-kernel --existing <file>`, tried here through a kernelspec
        files = sorted(impl.runtime.glob("sshpyk-kernel-*.json"), key=lambda p: p.stat().st_mtime)
        res["persistent_file"] = files[-1].name if files else None
        if files and res["alive_at_25s"]:
            variant(impl, "existing", existing=str(files[-1]))
            log = tmp / f"{impl.label}-attach.log"
            res["attach"] = Worker(th, faults, impl, "attach_existing", "existing", log).run()
            res["remote_after_attach"] = remote_procs(th)
    res["cleaned_up"] = clean_slate(th, impl)
    return res


# ---- the report ----------------------------------------------------------------------------

SCENARIOS = [
    ("idle_cut", "30 s link cut, idle", "bench"),
    ("busy_cut", "30 s cut while a cell runs", "bench"),
    ("kernel_kill9", "remote kernel kill -9", "bench"),
    ("server_killed", "Jupyter server killed", None),
    ("sshd_down", "sshd down at launch (refused)", "down"),
    ("link_down", "link cut at launch", "launch10"),
]


def yn(v) -> str:
    if isinstance(v, str):
        return v
    return "-" if v is None else ("yes" if v else "**no**")


def secs(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def left(r: dict) -> str:
    if "remote_left" not in r:
        return "-"
    return f"{len(r['remote_left'])} / {len(r.get('local_left', []))}"


def row(key: str, impl: Impl, r: dict) -> list[str]:
    notes = []
    if r.get("error"):
        notes.append(r["error"][:160])
    if r.get("shutdown_error"):
        notes.append(f"shutdown: {r['shutdown_error'][:100]}")
    elif r.get("shutdown_s") is not None:
        notes.append(f"shutdown {r['shutdown_s']:.1f} s")
    kept = r.get("kernel_kept")
    state = r.get("state_kept")
    recovery = r.get("recovery_s")
    if key == "busy_cut":
        state = r.get("all_lines")
        if "recovery_s" in r:
            notes.insert(0, f"execute_reply {r['recovery_s']:.2f} s after the restore")
        notes.insert(1, f"{r.get('lines_received', 0)}/9 printed lines arrived (state = all)")
    elif key == "kernel_kill9":
        kept = "no (killed)"
        state = "no (new kernel)" if r.get("restart_works") else None
        if "noticed_s" in r:
            notes.insert(0, f"restarter noticed ({r['noticed_by']}) after {r['noticed_s']:.2f} s")
        if "restart_works" in r:
            notes.insert(1, f"auto-restart gives a working kernel: {yn(r['restart_works'])}")
            if r.get("restart_error"):
                notes.insert(2, r["restart_error"][:120])
        notes.append("recovery = kill → working kernel")
    elif key == "server_killed":
        kept = r.get("alive_at_5s")
        state = None
        recovery = None
        gone = r.get("gone_after_s")
        if gone is not None:
            notes.append(f"kernel ended by itself {gone:.1f} s after the kill")
        else:
            notes.append(f"still running {ORPHAN_CHECKS[1]:g} s after the kill (orphaned)")
        n_local = len(r.get("local_left_at_5s", []))
        notes.append(f"{n_local} local ssh (non-master) left at 5 s")
        if impl.ref:
            att = r.get("attach") or {}
            if att.get("attached"):
                notes.append(
                    "re-attach: manual only, `sshpyk-kernel --existing <persistent file>` "
                    "(verified: x == 41)"
                )
            elif r.get("persistent_file"):
                notes.append(f"re-attach via --existing failed: {str(att)[:120]}")
            else:
                notes.append("re-attach: no")
        else:
            notes.append("re-attach possible: yes (REST /sshpyk/orphans, sshpyk ps)")
            notes.append(f"`sshpyk ps`: orphan listed alive at 5 s: {yn(r.get('ps_orphan_alive'))}")
            notes.append(f"`sshpyk reap` ended {r.get('reaped')}")
        n = len([c for c in r.get("cleaned_up", []) if not c.startswith("local ssh")])
        notes.append(f"{n} remote process(es) killed by pgid at the end")
        notes.append(f"procs left = at {ORPHAN_CHECKS[1]:g} s")
    elif key in ("sshd_down", "link_down"):
        kept = state = None
        recovery = r.get("raised_s")
        notes.insert(0, f"raised after {secs(recovery)} s: `{r.get('error_text', '')}`")
        notes.insert(1, f"max loop stall {r.get('max_stall_s', 0) * 1000:.0f} ms")
        notes.append("recovery = time until start_kernel raised")
    elif key == "idle_cut" and r.get("output") and not state:
        notes.append(f"printed {r['output']!r}")
    return [yn(kept), yn(state), secs(recovery), left(r), "; ".join(notes)]


def table(impls: list[Impl], results: dict) -> str:
    lines = [
        "| scenario | implementation | kernel kept | state kept | recovery (s) "
        "| remote / local procs left | notes |",
        "|---|---|---|---|---:|---|---|",
    ]
    for key, title, _ in SCENARIOS:
        for impl in impls:
            r = results.get(key, {}).get(impl.label)
            if r is None:
                continue
            lines.append(f"| {title} | {impl.label} | " + " | ".join(row(key, impl, r)) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated scenario keys (default: all)")
    args = ap.parse_args()
    chosen = [s for s in SCENARIOS if not args.only or s[0] in args.only.split(",")]
    t0 = time.monotonic()
    th = up("netns", prefix=PREFIX, index=INDEX)
    results: dict[str, dict[str, dict]] = {}
    impls: list[Impl] = []
    try:
        faults = Faults(th)
        with tempfile.TemporaryDirectory(prefix="sshpyk-resilience-") as tmp_s:
            tmp = Path(tmp_s)
            impls = make_impls(th, tmp)
            try:
                for key, title, kernel in chosen:
                    for impl in impls:
                        clean_slate(th, impl)  # every scenario starts without a master
                        print(f"{title} — {impl.label} ...", file=sys.stderr, flush=True)
                        if key == "server_killed":
                            r = server_killed(th, faults, impl, tmp)
                        else:
                            log = tmp / f"{impl.label}-{key}.log"
                            r = Worker(th, faults, impl, key, kernel, log).run()
                            r["cleaned_up"] = clean_slate(th, impl)
                        results.setdefault(key, {})[impl.label] = r
            finally:
                faults.clear()
                for impl in impls:
                    exit_masters(impl)
    finally:
        leftovers = down(th.state)
    print(table(impls, results))
    print(f"\ntook {time.monotonic() - t0:.0f} s")
    print("\nraw:", json.dumps(results))
    if leftovers:
        print(f"teardown left {leftovers}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
