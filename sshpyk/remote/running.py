# The kernels sshpyk runs on this host: list, kill, signal, reap (`sshpyk ps`, `sshpyk reap`,
# the server's orphan handling; the wire and the run dir: sshpyk/remote/protocol.py; the
# prelude is sent ahead of this program).  Parameters: {"action": "list"|"reap"|"kill"|
# "signal", "all": bool, "rundir": str (kill, signal), "signal": N (signal), "stale_after":
# seconds}; one answer {"kernels": [...], "reaped": [...], "host": name} (kill and signal add
# "outcome": "done" | "gone" | "elsewhere" | "unverified", and "hostname").
#
# A kernel is "attached" while its lease is being renewed (a monitor holds it), and
# "detached" otherwise; reap ends detached kernels (all of sshpyk's with "all") and removes
# what dead kernels left behind (run directories, exit files, ipc socket directories).
# Each run dir is "here", "elsewhere", "stale" or "unknown" (see the prelude): only "here"
# is ever signalled, "elsewhere" is listed with its hostname, and a process counts as alive
# only when its pid runs with the recorded start time, so a reused pid is never signalled.
import contextlib
import json
import os
import shutil
import signal
import time

from ._prelude import (  # sshpyk: bundled
    EXIT_SUFFIX,
    LEASE,
    META,
    emit,
    host_identity,
    kill_group,
    lease_age,
    read_params,
    run_root,
    running,
    where,
)
from .container import stop_container  # sshpyk: bundled


def kernels(here):
    out = []
    try:
        names = sorted(os.listdir(run_root()))
    except OSError:
        return out
    for name in names:
        rundir = os.path.join(run_root(), name)
        if not os.path.isdir(rundir) or os.path.islink(rundir):
            continue
        try:
            with open(os.path.join(rundir, META)) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
        age = lease_age(os.path.join(rundir, LEASE))
        site = where(meta, here)
        mine = site == "here"
        meta.update(
            rundir=rundir,
            where=site,
            hostname=(meta.get("host") or {}).get("hostname"),
            # elsewhere/unknown: not known here; reported as alive so that nobody drops it
            alive=running(meta, "pid") if mine else site != "stale",
            nanny_alive=running(meta, "nanny") if mine else site != "stale",
            lease_age=None if age == float("inf") else round(age, 1),
        )
        out.append(meta)
    return out


def signal_group(meta, sig):
    """Signal the kernel's process group while its leader is the recorded kernel."""
    if meta.get("where") != "here" or not running(meta, "pid"):
        return False
    return kill_group(int(meta["pgid"]), sig)


def wait_for(meta, keys, grace):
    deadline = time.monotonic() + grace
    while any(running(meta, k) for k in keys):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def end(meta, wait=5.0):
    for sig, grace in ((signal.SIGTERM, wait), (signal.SIGKILL, 2.0)):
        if not signal_group(meta, sig):
            break
        if sig == signal.SIGKILL and not running(meta, "nanny"):
            stop_container(meta.get("container"))  # else its nanny does (nanny.py)
        if wait_for(meta, ["pid"], grace):
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
        names = os.listdir(run_root())
    except OSError:
        return
    for name in names:
        if not name.endswith(EXIT_SUFFIX):
            continue
        path = os.path.join(run_root(), name)
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
    params = read_params()
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
    emit(**result)


if __name__ == "__main__":
    main()
