"""How the Slurm test hosts read ``scontrol show job|node -o`` (tests/harness/slurm.py):
one line of ``Key=Value`` fields, where a value may hold spaces or ``=``."""

from harness.slurm import parse_fields

LINE = (
    "JobId=7 JobName=my kernel UserId=sshpyktest(1001) JobState=PENDING Reason=Resources "
    "Dependency=(null) TRES=cpu=1,node=1,billing=1 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* "
    "StartTime=2026-11-28T16:43:36 NodeList= WorkDir=/home/sshpyktest Power= "
)


def test_fields_of_one_scontrol_line():
    f = parse_fields(LINE)
    assert f["JobId"] == "7"
    assert f["JobName"] == "my kernel"  # a space inside a value
    assert f["TRES"] == "cpu=1,node=1,billing=1"  # '=' inside a value
    assert f["Socks/Node"] == "*" and f["NtasksPerN:B:S:C"] == "0:0:*:*"
    assert (f["JobState"], f["Reason"]) == ("PENDING", "Resources")
    assert f["NodeList"] == "" and f["Power"] == ""
    assert f["StartTime"] == "2026-11-28T16:43:36"


def test_no_fields_in_an_empty_line():
    assert parse_fields("") == {}
