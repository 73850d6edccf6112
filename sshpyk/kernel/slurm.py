"""``Slurm``: the launch backend of a kernel on a Slurm compute node (kernelspec ``slurm``).

Slurm is the engine: every resource is an sbatch flag, every state comes from squeue,
scontrol or sacct, and nothing on the cluster depends on the laptop's connection.

* ``prepare``: one ``sbatch`` through the login host's master, the batch script on stdin.
  The job runs ``remote/slurm_agent.py`` and nothing else; the script holds no secret
  (slurmctld stores it).  Then squeue, at a widening interval, until the job runs:
  "queued: <reason>, est. start <time>", then "starting on <node>".  A restart finds the
  job still running and starts the new kernel in it: no second wait in the queue.
* ``command``: every session of the kernel (launch, monitor, re-attach, a warm launcher)
  is ``srun --jobid J --overlap`` on the login host, whose step runs
  ``remote/slurm_bridge.py`` on the job's node: it hands the step's stdio to the agent,
  which runs the session there, inside the batch step.  No port listens on the cluster
  network (the kernel listens on ipc in a 0700 dir on the node's own disk, and the relay
  channel path carries its messages over the step's stdio), ssh to compute nodes is never
  needed, and the HMAC key travels only in that stdin.
* ``release`` (shutdown, a failed launch): scancel.  A kernel whose lease expired (its
  Jupyter server went away) ends its job itself: the agent leaves when no kernel is left.
* ``ended``: once the kernel is gone or unreachable, why its job ended (TIMEOUT,
  OUT_OF_MEMORY, NODE_FAIL, CANCELLED, ...), said instead of "kernel died"; a job that
  ended is never resubmitted by a restart (an idle kernel would take a new allocation at
  every time limit): the user starts the kernel again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import time
from collections.abc import Callable
from typing import Any

from ..errors import RemoteLaunchError, SSHPykError
from ..remote.protocol import python_command
from ..slurm_options import sbatch_flags
from ..states import SlurmJobState as J
from ..transport import Master

# squeue's interval while a job waits: quick at first (an idle cluster starts it within a
# second), then no more often than a careful user would ask slurmctld
POLL = (0.2, 0.3, 0.5, 1.0, 1.0, 2.0, 3.0, 5.0, 10.0)
QUERY_TIMEOUT = 30.0
FIRST_GRACE = 600.0  # a job no launch reaches ends after this long (the server went away)
IDLE_GRACE = 120.0  # after its last kernel: a restart starts the next one well within it
BRIDGE_WAIT = 60.0  # a just-started job's agent may still be in its login shell
# a login shell: the site's profile (modules, PATH) as in an interactive session
SCRIPT_HEAD = "#!/bin/bash -l\n# sshpyk: the job of a Jupyter kernel (remote/slurm_agent.py)\n"
LOG = ".sshpyk/jobs/sshpyk-%j.log"  # relative to the job's working directory: $HOME

# states of a job that may still run the kernel (RUNNING without its node yet included)
WAITING = (J.PENDING, J.CONFIGURING, J.REQUEUED, J.RUNNING, J.SUSPENDED)
WHY = {
    J.TIMEOUT: "it reached its time limit",
    J.OUT_OF_MEMORY: "it ran out of memory",
    J.NODE_FAIL: "its node failed",
    J.CANCELLED: "it was cancelled",
    J.PREEMPTED: "another job preempted it",
    J.FAILED: "it failed",
    J.BOOT_FAIL: "its node failed to boot",
    J.DEADLINE: "it reached its deadline",
    J.COMPLETED: "no kernel was left in it",
    J.REVOKED: "it was revoked",
    J.SPECIAL_EXIT: "it ended with a special exit",
}


def sh(script: str) -> str:
    """One line for the login shell, whatever it is: the script runs in /bin/sh."""
    return f"exec /bin/sh -c {shlex.quote(script)}"


def job_state(word: str | None) -> J | None:
    """Slurm's state word (``CANCELLED by 1001``, ``COMPLETING``...) as the enum."""
    if not word:
        return None
    head = word.split()[0].rstrip("+")
    try:
        return J(head)
    except ValueError:
        return J.OTHER


def fields(text: str) -> dict[str, str]:
    """``scontrol show job -o``'s ``Key=Value`` words (values may hold no space)."""
    return dict(w.split("=", 1) for w in text.split() if "=" in w)


def epoch(value: str | None) -> float | None:
    """A time squeue printed with SLURM_TIME_FORMAT=%s; None for N/A, Unknown, ..."""
    try:
        t = float(value or "")
    except ValueError:
        return None
    return t if t > 0 else None


def ended_sentence(job: str, state: J, detail: dict[str, str]) -> str:
    why = WHY.get(state, "it ended")
    extra = ""
    if state is J.TIMEOUT and detail.get("TimeLimit"):
        extra = f" of {detail['TimeLimit']}"
    elif state is J.NODE_FAIL and detail.get("BatchHost"):
        why = f"its node {detail['BatchHost']} failed"
    elif state in (J.FAILED, J.OUT_OF_MEMORY) and detail.get("ExitCode"):
        extra = f", exit code {detail['ExitCode']}"
    return f"Slurm job {job} ended: {state.value} ({why}{extra})"


class Slurm:
    """The kernel runs in a Slurm job of the login host's cluster (see the top of this file)."""

    pids_reachable = False  # the remote pids a session reports are on the node, not the host
    # the kernel's sockets on the node's own disk, not in the cluster-wide $HOME
    launch_params: dict[str, Any] = {"local_sockets": True}

    def __init__(self, cfg, kernel_id: str):
        self.slurm: dict[str, Any] = dict(cfg.slurm or {})
        self.prefix = cfg.remote_python_prefix
        self.prelude = tuple(cfg.prelude or ())  # before every program: the agent's included
        self.name = "sshpyk-" + re.sub(r"[^A-Za-z0-9-]", "", str(kernel_id))[:8]
        self.job: str | None = None
        self.node: str | None = None
        self.state: J | None = None
        self.reason: str | None = None
        self.est_start: float | None = None
        self.ends_at: float | None = None
        self.time_limit: str | None = None
        self.ended: str | None = None
        self._cancel = asyncio.Event()
        self._released: str | None = None  # the job release() cancelled

    # ---- the launch ------------------------------------------------------------------------
    async def prepare(self, master: Master, step: Callable[[str], None], timeout: float) -> None:
        self._cancel = asyncio.Event()
        if self.ended is not None:  # never resubmitted behind the user's back
            raise RemoteLaunchError(
                f"{self.ended}. Start the kernel again to submit a new job.", kind="slurm_ended"
            )
        if self.job is not None:
            await self._refresh(master)
            if self.state is J.RUNNING:
                return  # a restart: the next kernel starts in the same allocation
            if await self.why_ended(master):
                raise RemoteLaunchError(
                    f"{self.ended}. Start the kernel again to submit a new job.",
                    kind="slurm_ended",
                )
        else:
            step("submitting the Slurm job")
            await self._submit(master)
        await self._wait_running(master, step)

    async def _submit(self, master: Master) -> None:
        params = {"job": None, "first_grace": FIRST_GRACE, "idle_grace": IDLE_GRACE}
        agent = python_command(self.prefix, "slurm_agent", params, self.prelude)
        script = SCRIPT_HEAD + agent + "\n"
        flags = [
            "--parsable",
            f"--job-name={self.name}",
            f"--output={LOG}",
            "--no-requeue",  # a requeued job would hold an allocation and no kernel
            *sbatch_flags(self.slurm),
        ]
        command = "umask 077 && mkdir -p .sshpyk/jobs && exec sbatch " + shlex.join(flags)
        rc, out, err = await master.run(sh(command), input=script.encode(), timeout=QUERY_TIMEOUT)
        job = out.strip().split(";")[0]
        if rc != 0 or not job.isdigit():
            words = err.strip() or out.strip() or f"exit status {rc}"
            raise RemoteLaunchError(
                f"sbatch on {master.target.alias!r} refused the kernel's job: {words[-500:]}",
                kind="slurm_submit",
                detail=err,
            )
        self.job, self.ended, self.state = job, None, J.PENDING

    async def _wait_running(self, master: Master, step: Callable[[str], None]) -> None:
        polls = iter(POLL)
        while True:
            await self._refresh(master)
            if self.state is J.RUNNING and self.node:
                step(f"starting on {self.node}")
                return
            if self.state not in WAITING:  # ended (or no longer listed) before it ran
                await self.why_ended(master)
                raise RemoteLaunchError(
                    f"{self.ended or f'Slurm job {self.job} did not start'}"
                    f"{await self._log_tail(master)}",
                    kind="slurm_ended",
                )
            step(self.queued_text())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._cancel.wait(), next(polls, POLL[-1]))
            if self._cancel.is_set():
                raise SSHPykError(
                    f"the launch was cancelled (Slurm job {self.job})", kind="cancelled"
                )

    def queued_text(self) -> str:
        text = f"queued: {self.reason or 'waiting'}"
        if self.est_start:
            text += ", est. start " + time.strftime("%H:%M", time.localtime(self.est_start))
        return text

    def cancel(self) -> None:
        """Stop waiting for the queue (the launch then fails and ``release`` scancels)."""
        self._cancel.set()

    # ---- sessions ---------------------------------------------------------------------------
    def command(self, prefix: str) -> str:
        if self.job is None or self.node is None:
            raise SSHPykError("the kernel's Slurm job is not running", kind="slurm_ended")
        inner = python_command(prefix, prelude=self.prelude, preload="launcher")
        bridge = python_command(
            prefix,
            "slurm_bridge",
            {"job": self.job, "command": inner, "wait": BRIDGE_WAIT},
            self.prelude,
        )
        srun = [
            "srun",
            f"--jobid={self.job}",
            "--overlap",  # beside the batch step (Slurm >= 20.11), never queued behind it
            "--nodes=1",
            "--ntasks=1",
            f"--nodelist={self.node}",
            "--quiet",
            "--unbuffered",  # else slurmstepd holds a step's output until a newline
            "/bin/sh",
            "-c",
            bridge,
        ]
        return shlex.join(srun)

    def adopt(self, remote: dict[str, Any]) -> None:
        """Re-attach: the job of a kernel a previous Jupyter server started."""
        job = remote.get("slurm_job")
        if job:
            self.job, self.node, self.state = str(job), remote.get("hostname"), J.RUNNING

    # ---- the end -----------------------------------------------------------------------------
    async def release(self, master: Master) -> None:
        """scancel: the kernel's end (shutdown, a failed launch) ends its job.  Not news:
        ``ended`` stays for ends nobody here asked for."""
        if self.job is None or self.ended is not None or self._released == self.job:
            return
        self._released = self.job
        with contextlib.suppress(SSHPykError, asyncio.TimeoutError, OSError):
            await master.run(sh(f"scancel {self.job}"), timeout=QUERY_TIMEOUT)
        self.state = J.CANCELLED

    async def why_ended(self, master: Master) -> str | None:
        """Why the job ended (the sentence shown instead of "kernel died"), or None while it
        runs (or when the host cannot be asked)."""
        if self.job is None:
            return None
        if self.ended is not None:
            return self.ended
        script = (
            f"sacct -n -P -X -j {self.job} -o State,ExitCode 2>/dev/null | sed 's/^/SACCT|/'; "
            f"scontrol show job -o {self.job} 2>/dev/null | sed 's/^/SCONTROL /'"
        )
        try:
            _, out, _ = await master.run(sh(script), timeout=QUERY_TIMEOUT)
        except (SSHPykError, asyncio.TimeoutError, OSError):
            return None
        detail: dict[str, str] = {}
        state = None
        for line in out.splitlines():
            if line.startswith("SCONTROL "):
                detail = fields(line[len("SCONTROL ") :])
                state = job_state(detail.get("JobState"))
        for line in out.splitlines():
            if line.startswith("SACCT|") and (state is None or state in (J.RUNNING, J.COMPLETING)):
                words = line.split("|")
                if len(words) >= 3 and job_state(words[1]) not in (None, J.RUNNING, J.PENDING):
                    state = job_state(words[1])
                    detail.setdefault("ExitCode", words[2])
        if state is None or state in (J.RUNNING, J.PENDING, J.CONFIGURING, J.SUSPENDED):
            return None
        if state is J.COMPLETING:
            # slurmctld decided (a time limit, scancel) and is ending the job's processes:
            # the reason is in Reason, the state word follows once it is done
            reason = detail.get("Reason", "")
            state = J.TIMEOUT if reason == "TimeLimit" else J.OTHER
            if state is J.OTHER:
                return None
        self.state = state
        self.ended = ended_sentence(self.job, state, detail)
        return self.ended

    async def _refresh(self, master: Master) -> None:
        """The job's squeue line (times as epoch seconds: the cluster's time zone may not be
        the laptop's)."""
        fmt = "%T|%r|%S|%B|%e|%l"
        script = f"SLURM_TIME_FORMAT=%s squeue -h -j {self.job} -o '{fmt}'"
        rc, out, _ = await master.run(sh(script), timeout=QUERY_TIMEOUT)
        line = out.strip().splitlines()[-1] if out.strip() else ""
        words = line.split("|")
        if rc != 0 or len(words) != 6:
            self.state = None  # no longer listed: ended (why_ended asks scontrol and sacct)
            return
        self.state = job_state(words[0])
        self.reason = None if words[1] in ("None", "(null)") else words[1]
        self.est_start = epoch(words[2]) if self.state is J.PENDING else None
        self.node = words[3] if words[3] not in ("", "n/a", "(null)") else self.node
        self.ends_at = epoch(words[4]) if self.state is J.RUNNING else None
        self.time_limit = words[5] or None

    async def _log_tail(self, master: Master) -> str:
        """The end of the job's output (the agent's words, a login shell's complaint)."""
        if self.job is None:
            return ""
        path = LOG.replace("%j", self.job)
        with contextlib.suppress(SSHPykError, asyncio.TimeoutError, OSError):
            _, out, _ = await master.run(sh(f"tail -c 1500 {path}"), timeout=QUERY_TIMEOUT)
            if out.strip():
                return f"; the job's output ({path}): {out.strip()}"
        return ""

    def describe(self) -> dict[str, Any]:
        warn = self.slurm.get("walltime_warning", 10)
        return {
            "slurm": {
                "job_id": self.job,
                "state": self.state.value if self.state else None,
                "reason": self.reason if self.state is J.PENDING else None,
                "node": self.node,
                "est_start": self.est_start,
                "ends_at": self.ends_at,
                "warn_at": self.ends_at - 60 * warn if self.ends_at and warn else None,
                "time_limit": self.time_limit,
                "ended": self.ended,
            }
        }
