# Run on the remote host by `sshpyk ps` / `sshpyk reap` and the server's orphan handling.
# Python >= 3.8, stdlib only.  stdin: one JSON line {"action": "list"|"reap"|"kill"|"signal",
# "all": bool, "rundir": str (kill, signal), "signal": N (signal), "stale_after": seconds}.
# stdout: one SSHPYK {"kernels": [...], "reaped": [...]} line (kill and signal add
# "outcome": "done" | "gone" | "elsewhere" | "unverified").
#
# A kernel is "attached" while its lease is being renewed (a monitor holds it), and
# "detached" otherwise; reap ends detached kernels (all of sshpyk's with "all") and removes
# what dead kernels left behind (run directories, exit files, ipc socket directories).
#
# Each run dir's meta.json names its host and processes (see launcher.py).  "where" says
# whose it is: "here"; "elsewhere" (another host shares this $HOME: never touched, only
# listed with its hostname); "stale" (this host, an earlier boot: nothing of it runs);
# "unknown" (no identity: an older sshpyk wrote it; left to its own lease).  A process
# counts as alive only when its pid runs with the recorded start time, so a reused pid
# is never signalled.
import contextlib
import json
import os
import shutil
import signal
import time

# sent ahead of this program in its place: the host has no sshpyk (see program_stdin)
from ._prelude import host_identity, running, where  # sshpyk: bundled

MARK = "SSHPYK "
BASE = os.path.expanduser("~/.sshpyk/run")


# ---- this program ---------------------------------------------------------------------------
def kernels(here):
    out = []
    try:
        names = sorted(os.listdir(BASE))
    except OSError:
        return out
    for name in names:
        rundir = os.path.join(BASE, name)
        if not os.path.isdir(rundir) or os.path.islink(rundir):
            continue
        try:
            with open(os.path.join(rundir, "meta.json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
        try:
            lease_age = time.time() - os.stat(os.path.join(rundir, "lease")).st_mtime
        except OSError:
            lease_age = None
        site = where(meta, here)
        mine = site == "here"
        meta.update(
            rundir=rundir,
            where=site,
            hostname=(meta.get("host") or {}).get("hostname"),
            # elsewhere/unknown: not known here; reported as alive so that nobody drops it
            alive=running(meta, "pid") if mine else site != "stale",
            nanny_alive=running(meta, "nanny") if mine else site != "stale",
            lease_age=None if lease_age is None else round(lease_age, 1),
        )
        out.append(meta)
    return out


def signal_group(meta, sig):
    """Signal the kernel's process group while its leader is the recorded kernel."""
    if meta.get("where") != "here" or not running(meta, "pid"):
        return False
    try:
        os.killpg(int(meta["pgid"]), sig)
        return True
    except OSError:
        return False


def wait_for(meta, keys, grace):
    deadline = time.monotonic() + grace
    while any(running(meta, k) for k in keys):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def end(meta, wait=5.0):
    for sig, grace in ((signal.SIGTERM, wait), (signal.SIGKILL, 2.0)):
        if not signal_group(meta, sig) or wait_for(meta, ["pid"], grace):
            break
    # its nanny cleans up and ends right after it, and with it the launch session's relay
    wait_for(meta, ["nanny", "session"], 2.0)


def owned_dir(path):
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return os.path.isdir(path) and not os.path.islink(path) and st.st_uid == os.getuid()


def remove(meta):
    """A run dir of this host whose processes are all gone, with its socket dir."""
    sockets = meta.get("ipc_dir")
    shutil.rmtree(meta["rundir"], ignore_errors=True)
    if (
        isinstance(sockets, str)
        and sockets != meta["rundir"]
        and os.path.basename(sockets).startswith("sshpyk-")
        and owned_dir(sockets)
    ):
        shutil.rmtree(sockets, ignore_errors=True)


def leftover(meta):
    """Nothing of it runs any more on this host (or this host rebooted since)."""
    if meta["where"] == "stale":
        return True
    return meta["where"] == "here" and not meta["alive"] and not meta["nanny_alive"]


def act_on(k, action, params):
    """kill or signal one kernel; its outcome."""
    if k["where"] in ("elsewhere", "unknown"):
        return {"elsewhere": "elsewhere", "unknown": "unverified"}[k["where"]]
    if action == "signal":
        return "done" if signal_group(k, int(params["signal"])) else "gone"
    if k["alive"]:
        end(k)
    if not running(k, "nanny"):
        remove(k)  # else its nanny cleans up as the kernel ends
    return "done" if k["alive"] else "gone"


def drop_exit_files(here):
    """Exit codes nobody came for (only this host's: another's may still be wanted)."""
    try:
        names = os.listdir(BASE)
    except OSError:
        return
    for name in names:
        if not name.endswith(".exit"):
            continue
        path = os.path.join(BASE, name)
        try:
            with open(path) as f:
                host = json.load(f).get("host")
        except (OSError, ValueError, AttributeError):
            host = None
        if isinstance(host, dict) and where({"host": host}, here) == "elsewhere":
            continue
        with contextlib.suppress(OSError):
            os.unlink(path)


def main():
    import sys

    params = json.loads(sys.stdin.readline())
    action = params.get("action", "list")
    here = host_identity()
    found = kernels(here)
    reaped = []
    result = {}
    if action in ("kill", "signal"):
        target = os.path.realpath(os.path.expanduser(params["rundir"]))
        outcome = "gone"  # no such run dir: the kernel ended and its nanny cleaned up
        for k in found:
            if os.path.realpath(k["rundir"]) == target:
                outcome = act_on(k, action, params)
                if action == "kill" and outcome in ("done", "gone"):
                    reaped.append(k["rundir"])
                result.update(hostname=k["hostname"])
        result["outcome"] = outcome
    elif action == "reap":
        stale = float(params.get("stale_after", 10))
        for k in found:
            attached = k["lease_age"] is not None and k["lease_age"] < stale
            if k["where"] == "here" and k["alive"] and (params.get("all") or not attached):
                end(k)
                if not running(k, "nanny"):
                    remove(k)
                reaped.append(k["rundir"])
            elif leftover(k):
                remove(k)  # what a killed nanny or a reboot left behind
                reaped.append(k["rundir"])
        drop_exit_files(here)
        found = kernels(here)
    result.update(kernels=found, reaped=reaped, host=here["hostname"])
    sys.stdout.write(MARK + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
