"""The Slurm backend's reading of Slurm (``kernel/slurm.py``): states, squeue's line, why a
job ended (from scontrol, or from sacct once slurmctld forgot the job), the commands it
sends.  Against a fake master that answers as Slurm 22.05 does; the real cluster is in
tests/integration/test_slurm.py."""

from __future__ import annotations

import asyncio
import shlex

import pytest

from sshpyk.errors import RemoteLaunchError
from sshpyk.kernel.slurm import Slurm, ended_sentence, epoch, fields, job_state
from sshpyk.states import SlurmJobState as J


class Cfg:
    slurm = {"partition": "gpu", "time": "1:00:00", "sbatch_options": ["--exclusive"]}
    remote_python_prefix = "/opt/env"
    prelude: list[str] = []


class Target:
    alias = "hpc"


class FakeMaster:
    target = Target()

    def __init__(self, answers):
        self.answers = list(answers)  # (rc, out, err) per command, in order
        self.commands: list[tuple[str, bytes | None]] = []

    async def run(self, command, *, input=None, timeout=30):
        self.commands.append((command, input))
        return self.answers.pop(0)


def run(coro):
    return asyncio.run(coro)


def test_state_words():
    assert job_state("CANCELLED by 1001") is J.CANCELLED
    assert job_state("COMPLETED+") is J.COMPLETED
    assert job_state("NEW_STATE_WORD") is J.OTHER
    assert job_state("") is None
    assert epoch("1700000000") == 1700000000.0
    assert epoch("N/A") is None and epoch("0") is None
    assert fields("JobId=12 JobState=TIMEOUT Reason=TimeLimit")["Reason"] == "TimeLimit"


def test_sentences():
    assert (
        ended_sentence("12", J.TIMEOUT, {"TimeLimit": "00:01:00"})
        == "Slurm job 12 ended: TIMEOUT (it reached its time limit of 00:01:00)"
    )
    assert ended_sentence("12", J.NODE_FAIL, {"BatchHost": "n7"}).endswith("(its node n7 failed)")
    assert "exit code 0:125" in ended_sentence("12", J.OUT_OF_MEMORY, {"ExitCode": "0:125"})


def test_submit_then_queued_then_running():
    b = Slurm(Cfg, "abcdef12-3456-7890")
    m = FakeMaster(
        [
            (0, "77\n", ""),
            (0, "PENDING|Resources|1700000600|n/a|N/A|1:00:00\n", ""),
            (0, "RUNNING|None|N/A|node3|1700003600|1:00:00\n", ""),
        ]
    )
    steps = []
    run(b.prepare(m, steps.append, 10))
    assert b.job == "77" and b.node == "node3" and b.ends_at == 1700003600.0
    assert steps[0] == "submitting the Slurm job" and steps[1].startswith("queued: Resources")
    assert steps[-1] == "starting on node3"
    submit, script = m.commands[0]
    words = shlex.split(shlex.split(submit)[-1])  # exec /bin/sh -c '<script>'
    assert "--job-name=sshpyk-abcdef12" in words and "--partition=gpu" in words
    assert words[-1] == "--exclusive" and "--parsable" in words
    assert script.startswith(b"#!/bin/bash -l\n") and b"slurm_agent" in script
    srun = shlex.split(b.command("/opt/env"))
    assert srun[:8] == [
        "srun",
        "--jobid=77",
        "--overlap",
        "--nodes=1",
        "--ntasks=1",
        "--nodelist=node3",
        "--quiet",
        "--unbuffered",
    ]
    status = b.describe()["slurm"]
    assert status["warn_at"] == 1700003600.0 - 600 and status["state"] == "RUNNING"


def test_sbatchs_refusal_is_its_own_words():
    b = Slurm(Cfg, "k1")
    m = FakeMaster([(1, "", "sbatch: error: invalid partition specified: gpu\n")])
    with pytest.raises(RemoteLaunchError, match="invalid partition specified: gpu"):
        run(b.prepare(m, lambda s: None, 10))


def test_why_ended_from_sacct_once_slurmctld_forgot_the_job():
    b = Slurm(Cfg, "k1")
    b.job = "12"
    m = FakeMaster([(0, "SACCT|OUT_OF_MEMORY|0:125\n", "")])
    assert run(b.why_ended(m)) == (
        "Slurm job 12 ended: OUT_OF_MEMORY (it ran out of memory, exit code 0:125)"
    )
    assert "sacct" in m.commands[0][0] and "scontrol show job" in m.commands[0][0]


def test_why_ended_while_slurmctld_ends_a_timed_out_job():
    b = Slurm(Cfg, "k1")
    b.job = "12"
    line = "SCONTROL JobId=12 JobState=COMPLETING Reason=TimeLimit TimeLimit=00:01:00\n"
    assert run(b.why_ended(FakeMaster([(0, line, "")]))).startswith("Slurm job 12 ended: TIMEOUT")


def test_a_running_job_has_not_ended_and_a_restart_stays_in_it():
    b = Slurm(Cfg, "k1")
    b.job, b.node = "12", "node3"
    m = FakeMaster([(0, "SCONTROL JobId=12 JobState=RUNNING Reason=None\n", "")])
    assert run(b.why_ended(m)) is None
    m = FakeMaster([(0, "RUNNING|None|N/A|node3|1700003600|1:00:00\n", "")])
    run(b.prepare(m, lambda s: None, 10))
    assert len(m.commands) == 1 and "squeue" in m.commands[0][0]  # no second sbatch


def test_an_ended_job_is_never_resubmitted_by_a_restart():
    b = Slurm(Cfg, "k1")
    b.job, b.ended = "12", "Slurm job 12 ended: TIMEOUT (it reached its time limit)"
    with pytest.raises(RemoteLaunchError, match="Start the kernel again"):
        run(b.prepare(FakeMaster([]), lambda s: None, 10))
