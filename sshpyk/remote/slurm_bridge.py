# The job step's end of a Slurm kernel's session (sshpyk/kernel/slurm.py runs it with
# `srun --jobid J --overlap ...` on the login host; the wire: sshpyk/remote/protocol.py).
# Parameters (argv[1], never a secret): {"job": id, "command": the session's shell command,
# "wait": s}.
#
# It hands this step's stdin, stdout and stderr to the job's agent (slurm_agent.py), which
# runs the session's command with them inside the batch step, where the kernel outlives
# this step; then it stays (the step, and with it srun and the ssh session, live while it
# runs) until the agent says the command ended, and ends with its status.  The launcher's
# parameters, HMAC key included, pass through the step's stdin straight to that command:
# nothing of them is in argv, the environment or anything Slurm stores.
import array
import json
import os
import socket
import struct
import sys
import time

from ._prelude import JOBS_ROOT, fail, host_identity  # sshpyk: bundled


def agent_socket(job, deadline):
    """A connection to the job's agent on this node, once it has started (a job that has
    just begun may still be running its login shell)."""
    record = os.path.join(os.path.expanduser(JOBS_ROOT), f"{job}.json")
    here = host_identity()
    problem = "its agent has not started"
    while True:
        try:
            with open(record) as f:
                rec = json.load(f)
            if (rec.get("host") or {}).get("boot_id") not in (None, here["boot_id"]) or (
                rec.get("host") or {}
            ).get("hostname") != here["hostname"]:
                problem = f"its agent runs on {rec['host'].get('hostname')!r}"
            else:
                conn = socket.socket(socket.AF_UNIX)
                conn.connect(rec["socket"])
                creds = conn.getsockopt(
                    socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
                )
                if struct.unpack("3i", creds)[1] != os.getuid():
                    conn.close()
                    fail("slurm_agent", f"the socket in {record} is not this user's")
                return conn
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        if time.monotonic() > deadline:
            fail(
                "slurm_agent",
                f"Slurm job {job} has no sshpyk agent on {here['hostname']} ({problem}); "
                f"see ~/.sshpyk/jobs/sshpyk-{job}.log on the cluster",
            )
        time.sleep(0.05)


def main():
    params = json.loads(sys.argv[1])
    job = str(params["job"])
    conn = agent_socket(job, time.monotonic() + float(params.get("wait", 60)))
    request = json.dumps({"command": params["command"]}).encode() + b"\n"
    fds = array.array("i", (0, 1, 2))
    try:
        conn.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    except OSError as e:
        fail("slurm_agent", f"the agent of Slurm job {job} did not take the session: {e}")
    # From here the session is the command's: this process only waits for its end.
    data = b""
    try:
        while b"\n" not in data:
            more = conn.recv(4096)
            if not more:
                break
            data += more
        code = int(json.loads(data.partition(b"\n")[0])["exit"])
    except (OSError, ValueError, KeyError, TypeError):
        code = 1  # not on stdout: that is the session's stream now
        sys.stderr.write(f"sshpyk: the agent of Slurm job {job} went away\n")
    os._exit(code & 0xFF if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
