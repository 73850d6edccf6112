"""Where a remote kernel starts (``remote_cwd.py``): the notebook's directory mapped into a
mounted local directory, else the kernelspec's ``remote_cwd``."""

from sshpyk.remote_cwd import cwd_params, remote_cwd


def test_a_notebook_inside_a_mount_starts_in_the_matching_remote_directory(tmp_path):
    proj = tmp_path / "proj"
    (proj / "data" / "raw").mkdir(parents=True)
    mounts = [{"local_path": str(proj), "remote_path": "~/proj"}]
    assert remote_cwd(str(proj / "data" / "raw"), mounts, None) == "~/proj/data/raw"
    assert remote_cwd(str(proj), mounts, None) == "~/proj"


def test_the_innermost_mount_wins_and_a_prefix_is_not_a_parent(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "ab").mkdir()
    mounts = [
        {"local_path": str(tmp_path / "a"), "remote_path": "/scratch/a"},
        {"local_path": str(tmp_path / "a" / "b"), "remote_path": "/fast/b"},
    ]
    assert remote_cwd(str(tmp_path / "a" / "b"), mounts, None) == "/fast/b"
    assert remote_cwd(str(tmp_path / "ab"), mounts, "~/work") == "~/work"  # not inside "a"


def test_elsewhere_the_kernelspecs_directory_or_home(tmp_path):
    assert remote_cwd(str(tmp_path), [], "/data/me") == "/data/me"
    assert remote_cwd(str(tmp_path), [], None) == "~"
    assert remote_cwd(None, [{"local_path": str(tmp_path), "remote_path": "~/x"}], None) == "~"


def test_a_symlinked_notebook_directory_is_followed(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    mounts = [{"local_path": str(tmp_path / "real"), "remote_path": "~/r"}]
    assert remote_cwd(str(tmp_path / "link"), mounts, None) == "~/r"


def test_what_the_launcher_is_told(tmp_path):
    mounts = [{"local_path": str(tmp_path), "remote_path": "~/m"}]
    # inside a mount: the mapped directory, else (an optional mount that failed) the home
    assert cwd_params(str(tmp_path), mounts, None) == {
        "cwd": "~/m",
        "cwd_else": "~",
        "cwd_strict": False,
    }
    # the kernelspec's own directory must be there
    assert cwd_params(None, mounts, "/scratch/me") == {
        "cwd": "/scratch/me",
        "cwd_else": None,
        "cwd_strict": True,
    }
