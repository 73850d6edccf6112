"""The Slurm health check's verdict from the login host's answer (``slurm_check.py``)."""

from sshpyk.slurm_check import verdict

GOOD = "VERSION slurm 22.05.8\nPART debug|up\nPART short|up\nPART old|down\n"


def test_a_good_cluster_and_its_partition():
    assert verdict(GOOD, {}, "hpc") == (True, "slurm 22.05.8", "")
    assert verdict(GOOD, {"partition": "debug,short"}, "hpc") == (
        True,
        "slurm 22.05.8, partition debug, short up",
        "",
    )


def test_missing_commands_say_which():
    ok, _, hint = verdict("MISSING sbatch\nMISSING srun\n", {}, "hpc")
    assert ok is False and "sbatch, srun not found on 'hpc'" in hint


def test_too_old_for_overlap():
    ok, value, hint = verdict("VERSION slurm 20.02.7\n", {}, "hpc")
    assert ok is False and value == "slurm 20.02.7" and "20.11" in hint


def test_an_unknown_partition_lists_the_known_ones():
    ok, _, hint = verdict(GOOD, {"partition": "gpu"}, "hpc")
    assert ok is False and "'gpu' is not on this cluster (it has: debug, old, short)" in hint


def test_a_partition_that_is_down_is_a_warning():
    ok, value, hint = verdict(GOOD, {"partition": "old"}, "hpc")
    assert ok is None and value.endswith("partition old down") and "wait" in hint


def test_no_version_is_a_failure():
    ok, _, hint = verdict("VERSION sinfo: error: no config\n", {}, "hpc")
    assert ok is False and "no version" in hint
