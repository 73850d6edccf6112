"""``sshpyk list`` with a host that does not answer: local kernels at once, every other
host's kernels as soon as they are checked, the silent host's last, after its own timeout.

Read as a user's pipe reads it: the CLI's stdout line by line, each line timestamped."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers import BIN, add_args, local_ssh_procs, sshpyk

pytestmark = pytest.mark.netns
TIMEOUT = 12  # seconds each host gets (sshpyk list --timeout)


def _kernels(test_hosts, env):
    local = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "mylocal"
    local.mkdir(parents=True)
    (local / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["python", "-m", "ipykernel_launcher"],
                "display_name": "Mine",
                "language": "python",
            }
        )
    )
    for name, alias in (("ssh-remote", "remote"), ("ssh-int", "internal"), ("ssh-bast", "bastion")):
        r = sshpyk(env, "add", *add_args(test_hosts, name, alias))
        assert r.returncode == 0, r.stderr
    # the host's connection is up (a Jupyter server would hold it): once its link is cut,
    # nothing fails fast (no connect timeout), the remote work just never answers
    assert sshpyk(env, "check", "--kernel-name", "ssh-remote").returncode == 0


def _timed_lines(stream, t0: float, into: list) -> None:
    for line in iter(stream.readline, ""):
        into.append((time.monotonic() - t0, line.rstrip("\n")))


def _blocks(lines: list[tuple[float, str]]) -> list[tuple[float, str, str]]:
    """(time its first line came, kernel name, whole text) of each block, in output order."""
    out = []
    for t, line in lines:
        if line.startswith("-----"):
            out.append([t, "", []])
        elif out:
            out[-1][2].append(line)
            if line.startswith("Name:") and not out[-1][1]:
                out[-1][1] = line.split(":", 1)[1].strip()
    return [(t, name, "\n".join(text)) for t, name, text in out]


def test_a_silent_host_delays_only_its_own_kernels(test_hosts, env, faults):
    _kernels(test_hosts, env)
    faults.cut("remote")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(BIN / "sshpyk"), "list", "--timeout", str(TIMEOUT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list = []
    reader = threading.Thread(target=_timed_lines, args=(proc.stdout, t0, lines))
    reader.start()
    err = proc.stderr.read()
    assert proc.wait(timeout=TIMEOUT + 30) == 0, err
    reader.join(10)
    took = time.monotonic() - t0
    blocks = _blocks(lines)
    when = {name: t for t, name, _ in blocks}
    text = {name: body for _, name, body in blocks}

    # local kernels first, before any host could have answered a check
    assert blocks[0][1] in ("mylocal", "python3"), blocks
    assert when["mylocal"] < 3, when
    # the hosts that answer: well before the silent one's timeout
    for name in ("ssh-int", "ssh-bast"):
        assert when[name] < TIMEOUT / 2, when
        assert "(x)" not in text[name], text[name]
    # the silent host: last, after its own timeout and not much later, saying so
    assert blocks[-1][1] == "ssh-remote", [b[1] for b in blocks]
    assert TIMEOUT - 1 <= when["ssh-remote"] < TIMEOUT + 5, (when, text["ssh-remote"])
    assert f"no answer from remote within {TIMEOUT} s" in text["ssh-remote"]
    assert took < TIMEOUT + 8
    # stderr is a pipe: no progress line, no carriage return or escape code anywhere
    assert "checking" not in err and "\r" not in err and "\033" not in err
    assert not any("\r" in line or "\033" in line for _, line in lines)
    # the silent host's work ended with the CLI: only the masters (shared, persistent) stay
    time.sleep(0.5)
    left = [c for c in local_ssh_procs(test_hosts.ssh_config) if "ControlMaster=no" in c]
    assert left == []


def test_json_waits_for_one_document_with_the_timeout_per_host(test_hosts, env, faults):
    _kernels(test_hosts, env)
    faults.cut("remote")
    r = sshpyk(env, "list", "--remote", "--json", "--timeout", "6", timeout=60)
    assert r.returncode == 0, r.stderr
    by = {e["name"]: {c["id"]: c for c in e["checks"]} for e in json.loads(r.stdout)["ssh"]}
    assert by["ssh-int"]["remote_kernel"]["status"] == "ok"
    assert by["ssh-bast"]["connection"]["status"] == "ok"
    failed = [c for c in by["ssh-remote"].values() if c["status"] == "fail"]
    assert len(failed) == 1 and failed[0]["hint"] == "no answer from remote within 6 s"
    assert by["ssh-remote"]["remote_kernel"]["status"] == "skipped"


def _on_a_terminal(env, *args) -> tuple[int, str, str]:
    """Run the CLI with stderr on a terminal and stdout on a pipe: (rc, stdout, terminal)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN / "sshpyk"), *args], stdout=subprocess.PIPE, stderr=slave, text=True, env=env
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the CLI closed the terminal (it ended)
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read()
    rc = proc.wait(timeout=30)
    os.close(master)
    return rc, out, seen.decode(errors="replace")


def test_progress_on_a_terminal_only(test_hosts, env, faults):
    _kernels(test_hosts, env)
    faults.cut("remote")
    rc, out, shown = _on_a_terminal(env, "list", "--remote", "--timeout", "5")
    assert rc == 0
    # refreshed in place; by then only the silent host is left to wait for
    assert "\r\033[Kchecking 1 host… (remote)" in shown, shown
    assert shown.endswith("\r\033[K")  # and wiped before the CLI ends
    assert "checking" not in out and "\r" not in out and "no answer from remote" in out

    rc, out, shown = _on_a_terminal(env, "check", "ssh-remote", "--timeout", "4")
    assert rc == 1  # a check failed
    assert "\r\033[Kchecking remote: Remote system…" in shown, shown
    assert shown.endswith("\r\033[K")
    assert "Connection (BatchMode)" in out and "\r" not in out
