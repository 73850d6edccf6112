# The remote environment, for sshpyk's checks and kernelspec discovery (the wire:
# sshpyk/remote/protocol.py; the prelude is sent ahead of this program).  Python >= 3.8,
# stdlib + jupyter_client.  One answer: system, python, jupyter_client, the kernelspecs it
# offers, sshfs, and whether each mount point would do.
import os
import platform
import shutil
import sys

from ._prelude import dir_problem, emit, mountinfo, read_params  # sshpyk: bundled


def mount_point_problem(path):
    """None when sshpyk can mount at ``path`` (as sshpyk/remote/mount.py would), else why."""
    point = os.path.realpath(os.path.expanduser(path))
    if mountinfo().get(point) == "fuse.sshfs":
        return None  # mounted by a running kernel: fine
    if not os.path.lexists(point):
        parent = point
        while not os.path.lexists(parent):
            parent = os.path.dirname(parent)
        return None if os.access(parent, os.W_OK) else f"cannot be created in {parent}"
    problem = dir_problem(point)
    return problem and problem[1]


def main():
    params = read_params()
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
    emit(**out)


if __name__ == "__main__":
    main()
