"""Drive the test hosts by hand: ``cd tests && python -m harness up|down|status``.

``down`` also runs at the start and end of ``.ci/run``, so a crashed run never leaves
namespaces or sshd processes behind for the next one.
"""

import argparse
import sys
from pathlib import Path

from .topology import HarnessError, TestHosts, down, state_dir, up


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m harness")
    ap.add_argument("action", choices=["up", "down", "status"])
    ap.add_argument("--mode", choices=["netns", "loopback"])
    args = ap.parse_args()
    if args.action == "up":
        try:
            th = up(args.mode)
        except HarnessError as e:
            print(f"harness: {e}", file=sys.stderr)
            return 1
        print(f"test hosts up ({th.mode}): ssh -F {th.ssh_config} remote|bastion|internal")
        return 0
    states = sorted(Path("/tmp").glob("spk*"))
    states = [s for s in states if (s / "topology.json").exists()]
    if args.action == "status":
        for s in states:
            th = TestHosts.load(s)
            print(f"{s}: {th.mode} {', '.join(f'{h.name}={h.address}' for h in th.hosts.values())}")
        return 0
    rc = 0
    for s in states or [state_dir("spk0")]:
        left = down(s)
        if left:
            print(f"harness: leftovers of {s}: {left}", file=sys.stderr)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
