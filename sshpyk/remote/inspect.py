# Run on the remote host by sshpyk's checks and kernelspec discovery (see remote/__init__).
# Python >= 3.8, stdlib + jupyter_client.  Prints one "SSHPYK <json>" line describing the
# environment: system, python, jupyter_client, the kernelspecs it offers, sshfs.
import json
import os
import platform
import shutil
import sys


def mounted_sshfs():
    points = set()
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                left, _, right = line.partition(b" - ")
                if right.split()[0] == b"fuse.sshfs":
                    points.add(
                        os.fsdecode(left.split()[4].decode("unicode_escape").encode("latin-1"))
                    )
    except OSError:
        pass
    return points


def mount_point_problem(path):
    """None when sshpyk can mount at ``path`` (as sshpyk/remote/mount.py would), else why."""
    point = os.path.realpath(os.path.expanduser(path))
    if point in mounted_sshfs():
        return None  # mounted by a running kernel: fine
    if not os.path.lexists(point):
        parent = point
        while not os.path.lexists(parent):
            parent = os.path.dirname(parent)
        return None if os.access(parent, os.W_OK) else f"cannot be created in {parent}"
    if not os.path.isdir(point):
        return "not a directory"
    try:
        if os.listdir(point):
            return "not empty"
    except OSError as e:
        return e.strerror
    if not os.access(point, os.W_OK):
        return "not writable"
    return None


def main():
    params = json.loads(sys.stdin.readline())
    out = {
        "system": " ".join(platform.uname()[:3]),
        "hostname": platform.node(),
        "python": sys.version.split()[0],
        "prefix": sys.prefix,
    }
    try:
        import jupyter_client
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError as e:
        out["jupyter_client"] = None
        out["jupyter_client_error"] = str(e)
    else:
        out["jupyter_client"] = jupyter_client.__version__
        specs = {}
        ksm = KernelSpecManager()
        for name in sorted(ksm.find_kernel_specs()):
            try:
                spec = ksm.get_kernel_spec(name)
            except Exception as e:  # one broken remote kernelspec must not hide the others
                specs[name] = {"error": str(e)}
                continue
            specs[name] = {
                "display_name": spec.display_name,
                "language": spec.language,
                "argv": spec.argv,
                "interrupt_mode": spec.interrupt_mode,
            }
        out["kernelspecs"] = specs
    sshfs = params.get("sshfs")
    if sshfs:
        path = os.path.expanduser(sshfs)
        out["sshfs"] = path if os.access(path, os.X_OK) else None
    else:
        out["sshfs"] = shutil.which("sshfs")
    out["fusermount"] = shutil.which("fusermount3") or shutil.which("fusermount")
    out["mount_points"] = {p: mount_point_problem(p) for p in params.get("mount_points") or []}
    sys.stdout.write("SSHPYK " + json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
