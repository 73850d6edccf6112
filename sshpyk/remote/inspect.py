# Run on the remote host by sshpyk's checks and kernelspec discovery (see remote/__init__).
# Python >= 3.8, stdlib + jupyter_client.  Prints one "SSHPYK <json>" line describing the
# environment: system, python, jupyter_client, the kernelspecs it offers, sshfs.
import json
import os
import platform
import shutil
import sys


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
    sys.stdout.write("SSHPYK " + json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
