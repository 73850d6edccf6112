# Run on the remote host by `sshpyk ps` / `sshpyk reap` and the server's orphan handling.
# Python >= 3.8, stdlib only.  stdin: one JSON line {"action": "list"|"reap"|"kill",
# "all": bool, "rundir": str (kill), "stale_after": seconds}.  stdout: one
# SSHPYK {"kernels": [...], "reaped": [...]} line.
#
# A kernel is "attached" while its lease is being renewed (a monitor holds it), and
# "detached" otherwise; reap ends detached kernels (all of sshpyk's with "all") and removes
# what dead kernels left behind (run directories, exit files, sshfs mount state).
import json
import os
import shutil
import signal
import time

MARK = "SSHPYK "
BASE = os.path.expanduser("~/.sshpyk/run")


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def kernels():
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
        try:
            lease_age = time.time() - os.stat(os.path.join(rundir, "lease")).st_mtime
        except OSError:
            lease_age = None
        pid = meta.get("pid")
        meta.update(
            rundir=rundir,
            alive=bool(pid) and alive(int(pid)),
            nanny_alive=bool(meta.get("nanny")) and alive(int(meta["nanny"])),
            lease_age=None if lease_age is None else round(lease_age, 1),
        )
        out.append(meta)
    return out


def end(meta, wait=5.0):
    pgid = meta.get("pgid")
    if not pgid or not meta.get("alive"):
        return
    for sig, grace in ((signal.SIGTERM, wait), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(int(pgid), sig)
        except OSError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not alive(int(meta["pid"])):
                return
            time.sleep(0.05)


def remove(rundir):
    shutil.rmtree(rundir, ignore_errors=True)


def main():
    import sys

    params = json.loads(sys.stdin.readline())
    action = params.get("action", "list")
    found = kernels()
    reaped = []
    if action == "kill":
        target = os.path.realpath(os.path.expanduser(params["rundir"]))
        for k in found:
            if os.path.realpath(k["rundir"]) == target:
                end(k)
                if not k["nanny_alive"]:
                    remove(k["rundir"])
                reaped.append(k["rundir"])
    elif action == "reap":
        stale = float(params.get("stale_after", 10))
        for k in found:
            attached = k["lease_age"] is not None and k["lease_age"] < stale
            if k["alive"] and (params.get("all") or not attached):
                end(k)
                if not k["nanny_alive"]:
                    remove(k["rundir"])
                reaped.append(k["rundir"])
            elif not k["alive"] and not k["nanny_alive"]:
                remove(k["rundir"])  # what a killed nanny could not clean up
                reaped.append(k["rundir"])
        try:
            for name in os.listdir(BASE):
                if name.endswith(".exit"):
                    os.unlink(os.path.join(BASE, name))
        except OSError:
            pass
        found = kernels()
    sys.stdout.write(MARK + json.dumps({"kernels": found, "reaped": reaped}) + "\n")


if __name__ == "__main__":
    main()
