"""``sshpyk.cli.render`` and the CLI's checks bookkeeping: what is printed for given data
(kernelspec blocks, check marks, the ps table, JSON), no host asked."""

from __future__ import annotations

import io
import json

from sshpyk.checks import CHECK_IDS, TITLES, Check
from sshpyk.cli import render
from sshpyk.cli.checking import unanswered
from sshpyk.kernelspecs import KernelEntry
from sshpyk.model import format_mount, parse_mount, validate
from sshpyk.states import CheckStatus

PLAIN = render.Style(False)
MODEL = validate(
    {
        "kernel_name": "ssh-r",
        "display_name": "Remote",
        "language": "python",
        "ssh_host_alias": "remote",
        "remote_python_prefix": "/opt/env",
        "remote_kernel_name": "python3",
    }
)


def ssh_entry(**over) -> KernelEntry:
    model = {**MODEL, **over}
    return KernelEntry("ssh-r", "/k/ssh-r", {"display_name": "Remote"}, True, model)


def rows(entry, checks=None) -> dict[str, str]:
    return dict(render.ssh_rows(entry, checks, PLAIN))


def test_fields_align_the_values():
    text = render.fields([("Name", "a"), ("Display Name", "b"), ("Empty", "")])
    assert text.splitlines() == ["Name:         a", "Display Name: b", "Empty:"]


def test_local_rows():
    raw = {"display_name": "Py", "argv": ["python", "-m", "ipykernel", "-f", "a b"]}
    entry = KernelEntry("py", "/k/py", raw, False)
    got = dict(render.local_rows(entry))
    assert got["Command"] == "python -m ipykernel -f 'a b'"
    assert got["Interrupt Mode"] == "signal" and got["Display Name"] == "Py"
    broken = KernelEntry("bad", "/k/bad", None, False, error="unreadable kernel.json")
    assert render.local_rows(broken)[-1] == ("Error", "unreadable kernel.json")


def test_ssh_rows_without_checks_show_only_the_spec():
    got = rows(ssh_entry())
    assert got["SSH Host Alias"] == "remote" and got["SSH Path"] == "ssh"
    assert got["SSH Config"] == "(default)" and got["Command"] == "(sshpyk-provisioner)"
    assert got["SSHFS Mounting"] == "no"
    # what only the host can tell is left out, not shown empty
    assert not {"Remote System", "Remote Interrupt Mode", "Remote Command"} & set(got)


def test_ssh_rows_mark_each_value_with_its_worst_check():
    checks = [
        Check("host_alias", TITLES["host_alias"], CheckStatus.OK, "10.0.0.2"),
        Check("connection", TITLES["connection"], CheckStatus.FAIL, "refused", "is sshd up?"),
        Check("ssh_client", TITLES["ssh_client"], CheckStatus.OK, "OpenSSH_9"),
        Check("remote_system", TITLES["remote_system"], CheckStatus.WARN, "Linux", "old"),
        Check("remote_kernel", TITLES["remote_kernel"], CheckStatus.SKIPPED, hint="no host"),
    ]
    got = rows(ssh_entry(), checks)
    assert got["SSH Host Alias"] == "remote (10.0.0.2) (x)  is sshd up?"
    assert got["SSH Path"] == "ssh (v)"
    assert got["Remote System"] == "Linux (!)  old"
    assert got["Remote Kernel Name"] == "python3 (-)"  # a skip shows no hint
    assert got["Remote Command"] == " (-)"  # asked, but nothing known
    assert got["Launch Timeout"] == str(MODEL["launch_timeout"])  # never marked


def test_ssh_rows_of_an_ok_remote_kernel():
    data = {"interrupt_mode": "message"}
    checks = [Check("remote_kernel", "t", CheckStatus.OK, "python -m ipykernel", data=data)]
    got = rows(ssh_entry(), checks)
    assert got["Remote Interrupt Mode"] == "message (v)"
    assert got["Remote Command"] == "python -m ipykernel (v)"


def test_ssh_rows_list_the_mounts():
    mounts = [parse_mount("/data:/mnt/data"), parse_mount("/code:/mnt/code:optional")]
    table = render.ssh_rows(ssh_entry(mount_local_on_remote=mounts), None, PLAIN)
    assert dict(table)["SSHFS Mounting"] == "yes"
    mount_rows = [(label, value) for label, value in table if label.startswith("  Mount ")]
    assert mount_rows == [
        ("  Mount 1", format_mount(mounts[0])),
        ("  Mount 2", format_mount(mounts[1])),
    ]
    assert mount_rows[0][1].startswith("/data:/mnt/data")
    sshfs = Check("sshfs", "SSHFS", CheckStatus.FAIL, "missing", "install sshfs")
    assert rows(ssh_entry(mount_local_on_remote=mounts), [sshfs])["SSHFS Mounting"] == (
        "yes (x)  install sshfs"
    )


def test_an_invalid_ssh_kernel_shows_its_error():
    entry = KernelEntry("bad", "/k/bad", {"display_name": "B"}, True, error="no remote prefix")
    got = render.ssh_rows(entry, None, PLAIN)
    assert got[-1] == ("Error", "(x) no remote prefix")


def test_style_marks_and_colours():
    colour = render.Style(True)
    assert PLAIN.mark(CheckStatus.FAIL) == "(x)" and PLAIN.head("H") == "H"
    assert colour.mark("fail") == "\033[31m(x)\033[0m"
    assert colour.head("H") == "\033[1mH\033[0m"
    assert "\033" not in render.ssh_block(ssh_entry(), None, PLAIN)
    assert render.ssh_block(ssh_entry(), None, PLAIN).startswith("------ SSH Kernel -------\n")


def test_entry_json_with_and_without_checks():
    entry = ssh_entry()
    assert "checks" not in render.entry_json(entry, None)
    check = Check("connection", "Connection", CheckStatus.OK, "ok")
    out = json.loads(json.dumps(render.entry_json(entry, [check])))
    assert out["checks"][0]["status"] == "ok" and out["config"]["ssh_host_alias"] == "remote"


def test_check_line():
    bad = Check("connection", "Connection", CheckStatus.FAIL, "refused", "start sshd")
    assert render.check_line(bad, PLAIN) == "(x) Connection: refused\n      start sshd"
    good = Check("connection", "Connection", CheckStatus.OK, "fine", "unused hint")
    assert render.check_line(good, PLAIN) == "(v) Connection: fine"


def kernel(**over):
    return {
        "kernel_id": "k1",
        "kernelspec": "ssh-r",
        "host_alias": "remote",
        "started_at": 0,
        "server_pid": 42,
        "orphan": False,
        "reachable": True,
        "alive": True,
        "attached": True,
        "lease_age": 0,
        **over,
    }


def test_on_the_host():
    assert render.on_the_host(kernel()) == "running, attached"
    assert render.on_the_host(kernel(attached=False, lease_age=61.4)) == (
        "running, detached for 61s"
    )
    assert render.on_the_host(kernel(alive=False)) == "ended"
    assert render.on_the_host(kernel(reachable=False)) == "unreachable"
    assert render.on_the_host(kernel(elsewhere=True, on_host="b")) == "on another host (b)"


def test_ps_table():
    assert render.ps_table([]) == []
    lines = render.ps_table([kernel(), kernel(kernel_id="k2-long", orphan=True)])
    assert lines[0].split() == [
        "KERNEL",
        "KERNELSPEC",
        "HOST",
        "STARTED",
        "SERVER",
        "ON",
        "THE",
        "HOST",
    ]
    assert lines[2].startswith("k2-long  ssh-r") and "gone (pid 42)" in lines[2]
    assert "pid 42" in lines[1] and lines[1].endswith("running, attached")
    # columns aligned: every row's SERVER starts where the header's does
    at = lines[0].index("SERVER")
    assert all(line[at:].startswith(("SERVER", "pid", "gone")) for line in lines)


def test_progress_only_on_a_terminal():
    pipe = io.StringIO()
    progress = render.Progress(lambda: "checking…", pipe)
    progress.t0 -= 10
    progress.draw()
    assert pipe.getvalue() == "" and not progress.shown

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    progress = render.Progress(lambda: "checking 1 host…", tty)
    progress.draw()  # under a second: nothing yet
    assert tty.getvalue() == ""
    progress.t0 -= 3
    progress.draw()
    assert tty.getvalue() == "\r\033[Kchecking 1 host… 3 s"
    progress.clear()
    assert tty.getvalue().endswith("\r\033[K") and not progress.shown


def test_unanswered_checks():
    got = [Check("ssh_client", "SSH client", CheckStatus.OK, "OpenSSH")]
    out = unanswered(MODEL, got, 5)
    assert out[0] is got[0]
    missing = [c.id for c in out[1:]]
    assert missing == [cid for cid in CHECK_IDS if cid not in ("ssh_client", "sshfs")]
    assert out[1].status == CheckStatus.FAIL and out[1].value == "no answer"
    assert out[1].hint == "no answer from remote within 5 s"
    assert {c.status for c in out[2:]} == {CheckStatus.SKIPPED}
    broke = unanswered({**MODEL, "mount_local_on_remote": [{}]}, [], 5, "the check broke: x")
    assert "sshfs" in [c.id for c in broke] and broke[0].hint == "the check broke: x"
    assert broke[0].value == ""


def test_ssh_rows_say_a_kernel_runs_under_slurm():
    assert "Runs On" not in rows(ssh_entry())  # not a Slurm kernel: nothing about Slurm
    relay = {**MODEL, "channels": "relay"}
    slurm = validate({**relay, "slurm": {"partition": "gpu", "time": "8:00:00", "cpus": 4}})
    got = rows(ssh_entry(slurm=slurm["slurm"], channels="relay"))
    assert got["Runs On"] == "a compute node, in a Slurm job (partition gpu, time limit 8:00:00)"
    assert got["  sbatch Flags"] == "--partition=gpu --time=8:00:00 --cpus-per-task=4"
    assert got["  Time Warning"] == "10 min before the limit"
    bare = rows(ssh_entry(slurm=validate({**relay, "slurm": {"walltime_warning": 0}})["slurm"]))
    assert bare["Runs On"] == "a compute node, in a Slurm job"
    assert bare["  sbatch Flags"] == "(the cluster's defaults)" and bare["  Time Warning"] == "none"


def test_ssh_rows_show_the_container():
    assert "Container" not in rows(ssh_entry())  # no container: nothing about one
    model = validate(
        {
            **MODEL,
            "container": {
                "runtime": "docker",
                "image": "ghcr.io/org/ml:2.1",
                "options": ["--gpus=all", "--env=A=b c"],
            },
        }
    )
    got = rows(ssh_entry(container=model["container"]))
    assert got["Container"] == "docker"
    assert got["  Image"] == "ghcr.io/org/ml:2.1"
    assert got["  Python"] == "python3"  # the schema's default
    assert got["  Runtime Options"] == "--gpus=all '--env=A=b c'"  # one quoted word each
    bare = validate({**MODEL, "container": {"runtime": "apptainer", "image": "~/ml.sif"}})
    assert rows(ssh_entry(container=bare["container"]))["  Runtime Options"] == "none"
    # the rows come in the block, after the mounts
    labels = [label for label, _ in render.ssh_rows(ssh_entry(**bare), None, PLAIN)]
    assert labels.index("Container") == labels.index("SSHFS Mounting") + 1
