"""Drive the test hosts by hand: ``cd tests && python -m harness up|down|status``.

``down`` also runs at the start and end of ``./dev test``, so a crashed run never leaves
namespaces or sshd processes behind for the next one.  ``--prefix``/``--index`` give an
independent instance (own namespaces, subnet and state dir), e.g. for UI work while the
test suite runs: ``python -m harness up --prefix spkui --index 2``.

``otp`` prints a one-time code the ``otp`` host accepts for 5 s more, ``password`` the test
user's password on the ``password`` host (netns mode: ``--prefix``/``--index`` pick the
instance, default spk 0), for logging in by hand or from the Galata tests.

``slurm up|down`` builds (or removes) the Slurm cluster, login host ``hpc`` and compute host
``node1``, onto the netns instance ``--prefix``/``--index`` (default spk 0; ``up`` brings the
instance up first when it is not), e.g. ``python -m harness slurm up --prefix spkui --index 2``.
"""

import argparse
import re
import sys
from pathlib import Path

from . import slurm
from .logins import sweep_orphans
from .topology import HarnessError, TestHosts, down, is_root, state_dir, up


def _states(prefix: str | None) -> list[Path]:
    pattern = re.compile(rf"^{re.escape(prefix)}\d+$") if prefix else re.compile(r"^spk\w*\d+$")
    return sorted(
        p
        for p in Path("/tmp").iterdir()
        if pattern.match(p.name) and (p / "topology.json").exists()
    )


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m harness")
    ap.add_argument("action", choices=["up", "down", "status", "otp", "password", "slurm"])
    ap.add_argument("slurm_action", nargs="?", choices=["up", "down"], help="with slurm")
    ap.add_argument("--mode", choices=["netns", "loopback"])
    ap.add_argument("--prefix", help="instance name prefix (default: spk / spklo)")
    ap.add_argument("--index", type=int, default=0, help="instance number: its own subnet")
    args = ap.parse_args()
    if args.action == "up":
        try:
            th = up(args.mode, prefix=args.prefix, index=args.index)
        except HarnessError as e:
            print(f"harness: {e}", file=sys.stderr)
            return 1
        aliases = "remote|bastion|internal|noforward"
        if th.has_login_hosts:
            aliases += "|otp|password (-o BatchMode=no: python -m harness otp|password)"
        print(f"test hosts up ({th.mode}): ssh -F {th.ssh_config} {aliases}")
        print(f"remote python prefix: {th.remote_python_prefix}")
        return 0
    if args.action in ("otp", "password"):
        try:
            th = TestHosts.load(state_dir(f"{args.prefix or 'spk'}{args.index}"))
            print(th.otp_code() if args.action == "otp" else th.password)
        except (OSError, HarnessError) as e:
            print(f"harness: {e}", file=sys.stderr)
            return 1
        return 0
    if args.action == "slurm":
        return _slurm(args)
    states = _states(args.prefix)
    if args.action == "status":
        for s in states:
            th = TestHosts.load(s)
            hosts = [f"{h.name}={h.address}" for h in th.hosts.values()]
            hosts += [f"{h.name}={h.address}:{h.port}" for h in th.login_hosts.values()]
            print(f"{s}: {th.mode} {', '.join(hosts)}")
            if (slurm.slurm_dir(s) / "slurm.json").exists():
                sh = slurm.SlurmHosts.load(s)
                nodes = [f"{n}={a}" for n, a in sh.node_addresses.items()]
                print(f"  slurm: hpc={sh.login_address}, {', '.join(nodes)} (via hpc)")
        return 0
    rc = 0
    if is_root():
        for f in sweep_orphans():
            print(f"harness: removed {f} (its instance's state dir is gone)")
    for s in states:
        left = down(s)
        if left:
            print(f"harness: leftovers of {s}: {left}", file=sys.stderr)
            rc = 1
    return rc


def _slurm(args) -> int:
    state = state_dir(f"{args.prefix or 'spk'}{args.index}")
    try:
        if args.slurm_action == "down":
            left = slurm.down(state)
            if left:
                print(f"harness: leftovers of the Slurm hosts of {state}: {left}", file=sys.stderr)
            return 1 if left else 0
        if args.slurm_action != "up":
            print("harness: slurm up|down", file=sys.stderr)
            return 2
        if (state / "topology.json").exists():
            th = TestHosts.load(state)
        else:
            th = up("netns", prefix=args.prefix, index=args.index)
        sh = slurm.up(th)
    except HarnessError as e:
        print(f"harness: {e}", file=sys.stderr)
        return 1
    print(f"slurm up: ssh -F {sh.ssh_config} {sh.login_alias} (nodes: {', '.join(sh.node_names)})")
    print(f"SLURM_CONF={sh.conf} (set there); remote python prefix: {sh.remote_python_prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
