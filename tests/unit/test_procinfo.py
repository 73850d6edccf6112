"""The macOS fallback of tests/harness/procinfo.py: parsing recorded ``ps``, ``lsof``, ``ss``
and ``mount`` output (formats as their man pages give them; no process is run here)."""

from __future__ import annotations

from harness import procinfo

# macOS: ps -A -ww -o pid=,ppid=,stat=,lstart=,command=  (lstart: "Day Mon DD HH:MM:SS YYYY")
PS_MAC = """\
    1     0 Ss   Mon Nov 23 09:12:01 2026     /sbin/launchd
  412     1 S    Mon Nov 23 09:12:05 2026     /usr/sbin/sshd -D -f /tmp/spklo12/sshd_config
 5120   412 Z    Sat Nov 28 21:01:44 2026     (python3.12)
 5121   412 S+   Sat Nov  7 21:01:44 2026     /Users/me/bin/python -m ipykernel -f /tmp/k 1.json
 5122     1 R
"""


def test_ps_rows_give_pid_ppid_start_and_the_whole_command():
    rows = {p.pid: p for p in procinfo.parse_ps(PS_MAC)}
    assert sorted(rows) == [1, 412, 5120, 5121]  # a cut row (5122) is not guessed at
    sshd = rows[412]
    assert (sshd.ppid, sshd.zombie) == (1, False)
    assert sshd.started == "Mon Nov 23 09:12:05 2026"
    assert sshd.cmdline == "/usr/sbin/sshd -D -f /tmp/spklo12/sshd_config"
    # a day of one digit is padded with a space: still five words of lstart
    kernel = rows[5121]
    assert kernel.started == "Sat Nov 7 21:01:44 2026"
    assert kernel.cmdline.endswith("-f /tmp/k 1.json")  # spaces inside the command stay
    assert rows[5120].zombie and not rows[1].zombie


def test_ps_environment_is_what_follows_the_known_command():
    cmds = {412: "/usr/sbin/sshd -D", 5121: "python -m ipykernel_launcher", 7: "gone"}
    with_env = """\
  412 /usr/sbin/sshd -D PATH=/usr/bin:/bin HOME=/var/empty
 5121 python -m ipykernel_launcher SPK_HOST=remote SPK_STATE=/tmp/spklo12 TERM=xterm
 9999 not asked for X=1
"""
    envs = procinfo.parse_ps_env(with_env, cmds)
    assert envs == {
        412: {"PATH=/usr/bin:/bin", "HOME=/var/empty"},
        5121: {"SPK_HOST=remote", "SPK_STATE=/tmp/spklo12", "TERM=xterm"},
    }
    # the marker is a whole word: another instance's longer state dir does not match
    assert "SPK_STATE=/tmp/spklo1" not in envs[5121]


def test_ps_stat_a_zombie_or_no_row_is_dead():
    assert procinfo.parse_ps_stat("S+\n")
    assert procinfo.parse_ps_stat("Ss  ")
    assert not procinfo.parse_ps_stat("Z\n")
    assert not procinfo.parse_ps_stat("")  # ps -p of a gone pid prints nothing (rc 1)


# macOS: lsof -nP -iTCP -sTCP:LISTEN -F pcn (a "p" set, then an "f" set per file; -F always
# adds the fd field)
LSOF_MAC = """\
p412
csshd
f3
n*:22
f4
n[::]:22
p5121
cpython3.12
f11
n127.0.0.1:50123
f12
n[::1]:50124
"""


def test_lsof_field_output_gives_address_port_and_owner():
    assert procinfo.parse_lsof(LSOF_MAC) == [
        ("*", 22, 412, "sshd"),
        ("::", 22, 412, "sshd"),
        ("127.0.0.1", 50123, 5121, "python3.12"),
        ("::1", 50124, 5121, "python3.12"),
    ]
    assert procinfo.parse_lsof("") == []


def test_ss_output_gives_the_same_tuples_one_per_owner():
    ss = (
        'LISTEN 0 128 127.0.0.1:50123 0.0.0.0:* users:(("ssh",pid=77,fd=5),("ssh",pid=78,fd=5))\n'
        "LISTEN 0 128 [::1]:631 [::]:*\n"
    )
    assert procinfo.parse_ss(ss) == [
        ("127.0.0.1", 50123, 77, "ssh"),
        ("127.0.0.1", 50123, 78, "ssh"),
        ("::1", 631, 0, ""),
    ]


def test_mount_points_from_mount_on_a_mac_and_on_linux():
    mac = (
        "/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)\n"
        "me@remote:/home on /tmp/spklo12/mnt/a b (macfuse, nodev, nosuid, synchronous)\n"
    )
    assert procinfo.parse_mount(mac) == ["/", "/tmp/spklo12/mnt/a b"]
    linux = "proc on /proc type proc (rw,nosuid)\n"
    assert procinfo.parse_mount(linux) == ["/proc"]
