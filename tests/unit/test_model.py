"""``sshpyk.model``: the schema, the validator and its "safe for ssh and a remote shell"
checks, the mount syntax and ``SSHKernelConfig`` — pure logic, no ssh."""

from __future__ import annotations

import pytest

from sshpyk import model
from sshpyk.model import InvalidField, SSHKernelConfig, format_mount, parse_mount, validate

BASE = {
    "kernel_name": "ssh-remote",
    "display_name": "Python (remote)",
    "language": "python",
    "ssh_host_alias": "remote",
    "remote_python_prefix": "/opt/env",
    "remote_kernel_name": "python3",
}
CONFIG = {k: BASE[k] for k in ("ssh_host_alias", "remote_python_prefix", "remote_kernel_name")}


def refused(data, field: str, words: str = "", **kw) -> InvalidField:
    with pytest.raises(InvalidField) as e:
        validate(data, **kw)
    assert e.value.field == field, e.value
    assert words in e.value.message, e.value.message
    assert str(e.value).startswith(f"{field}: ")
    return e.value


# ---- the schema ------------------------------------------------------------------------


def test_schema_loads_once_and_names_every_field_of_the_config():
    s = model.schema()
    assert s is model.schema()  # cached: one parse per process
    assert s["additionalProperties"] is False
    assert set(s["required"]) <= set(s["properties"])
    assert set(model.CONFIG_FIELDS) == set(s["properties"]) - set(model.SPEC_FIELDS)
    dataclass_fields = set(SSHKernelConfig.__dataclass_fields__)
    assert dataclass_fields == set(model.CONFIG_FIELDS)
    # every check the schema names exists in the validator
    names = {r.get("x-sshpyk-check") for r in s["properties"].values()} - {None}
    assert names <= set(model._CHECKS)


def test_a_minimal_kernel_gets_every_default():
    out = validate(dict(BASE))
    props = model.schema()["properties"]
    assert set(out) == set(props)
    for key, rule in props.items():
        assert out[key] == BASE.get(key, rule.get("default")), key
    assert out["transport"] == "ipc" and out["interrupt_mode"] == "message"
    assert out["mount_local_on_remote"] == []


def test_validate_does_not_change_its_input():
    data = dict(BASE, mount_local_on_remote=["/a:/b"])
    validate(data)
    assert data["mount_local_on_remote"] == ["/a:/b"]


@pytest.mark.parametrize("body", [None, [], "x", 3])
def test_body_must_be_an_object(body):
    refused(body, "body", "JSON object")


def test_unknown_field_is_refused():
    refused(dict(BASE, colour="blue"), "colour", "unknown field")


@pytest.mark.parametrize("key", sorted(BASE))
@pytest.mark.parametrize("missing", ["drop", None, ""])
def test_every_required_field_is_required(key, missing):
    data = dict(BASE)
    if missing == "drop":
        del data[key]
    else:
        data[key] = missing
    refused(data, key, "is required")


def test_only_restricts_the_fields_and_their_requirements():
    out = validate(CONFIG, only=model.CONFIG_FIELDS)
    assert "kernel_name" not in out and out["ssh_host_alias"] == "remote"
    refused(
        dict(CONFIG, display_name="x"), "display_name", "unknown field", only=model.CONFIG_FIELDS
    )


# ---- types, enums, ranges ------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("launch_timeout", "60", "must be of type integer"),
        ("launch_timeout", 1.5, "must be of type integer"),
        ("launch_timeout", True, "must be of type integer"),  # a bool is no integer here
        ("ssh_config", 3, "must be of type string or null"),
        ("display_name", None, "is required"),
        ("mount_local_on_remote", {"local_path": "/a"}, "must be of type array"),
        ("transport", "udp", "must be one of ipc, tcp"),
        ("interrupt_mode", "kill", "must be one of message, signal"),
        ("launch_timeout", 0, "must be from 1 to 3600"),
        ("launch_timeout", 3601, "must be from 1 to 3600"),
        ("lease_timeout", 9, "must be from 10 to 604800"),
        ("lost_timeout", 4, "must be from 5 to 86400"),
        ("kernel_name", "k" * 101, "longer than 100"),
        ("display_name", "d" * 201, "longer than 200"),
    ],
)
def test_types_enums_ranges_and_lengths(key, value, words):
    refused(dict(BASE, **{key: value}), key, words)


@pytest.mark.parametrize(
    "key, value",
    [
        ("launch_timeout", 1),
        ("launch_timeout", 3600),
        ("lease_timeout", 10),
        ("transport", "tcp"),
        ("interrupt_mode", "signal"),
        ("ssh_config", None),
        ("ssh", None),
        ("ssh", "/usr/bin/ssh"),
        ("remote_sshfs", "~/bin/sshfs"),
        ("ssh_host_alias_local_on_remote", "laptop"),
    ],
)
def test_edge_values_are_accepted(key, value):
    assert validate(dict(BASE, **{key: value}))[key] == value


# ---- what makes a value safe for ssh and a remote shell -----------------------------------


@pytest.mark.parametrize(
    "alias", ["remote", "login-1.example.org", "user@host", "h_1:22", "[::1]", "a%b+c", "10.0.0.1"]
)
def test_plain_aliases_pass(alias):
    assert validate(dict(BASE, ssh_host_alias=alias))["ssh_host_alias"] == alias


@pytest.mark.parametrize(
    "alias, words",
    [
        ("-oProxyCommand=touch /tmp/x", "starts with '-'"),
        ("-F", "starts with '-'"),
        ("host name", "not a plain ssh Host alias"),
        ("host;id", "not a plain ssh Host alias"),
        ("$(id)", "not a plain ssh Host alias"),
        ("`id`", "not a plain ssh Host alias"),
        ("h'q", "not a plain ssh Host alias"),
        ("host*", "not a plain ssh Host alias"),
        ("host\n-oProxyCommand=x", "control characters"),
        ("host\x00", "control characters"),
        ("host\t", "control characters"),
    ],
)
def test_aliases_ssh_could_misread_are_refused(alias, words):
    refused(dict(BASE, ssh_host_alias=alias), "ssh_host_alias", words)
    refused(dict(BASE, ssh_host_alias_local_on_remote=alias), "ssh_host_alias_local_on_remote")


@pytest.mark.parametrize("path", ["/opt/env", "~", "~/envs/py 3.12", "/a/b-c/d_e.f"])
def test_remote_paths_absolute_or_home_pass(path):
    assert validate(dict(BASE, remote_python_prefix=path))["remote_python_prefix"] == path


@pytest.mark.parametrize(
    "path, words",
    [
        ("env", "must be absolute or start with '~/'"),
        ("~user/env", "must be absolute or start with '~/'"),
        ("./env", "must be absolute"),
        ("/opt/$HOME", "shell metacharacters"),
        ("/opt/`id`", "shell metacharacters"),
        ("/opt/a;rm -rf ~", "shell metacharacters"),
        ("/opt/a|b", "shell metacharacters"),
        ("/opt/a&b", "shell metacharacters"),
        ("/opt/a>b", "shell metacharacters"),
        ('/opt/"a"', "shell metacharacters"),
        ("/opt/'a'", "shell metacharacters"),
        ("/opt/a\\b", "shell metacharacters"),
        ("/opt/*", "shell metacharacters"),
        ("/opt/{a,b}", "shell metacharacters"),
        ("/opt/a\nb", "control characters"),
        ("/opt/a\rb", "control characters"),
    ],
)
def test_remote_paths_a_shell_could_misread_are_refused(path, words):
    refused(dict(BASE, remote_python_prefix=path), "remote_python_prefix", words)
    refused(dict(BASE, remote_sshfs=path), "remote_sshfs", words)


@pytest.mark.parametrize(
    "path, words", [("-x", "starts with '-'"), ("/bin/ssh;id", "shell metacharacters")]
)
def test_local_paths_that_are_options_or_shell_are_refused(path, words):
    refused(dict(BASE, ssh=path), "ssh", words)


@pytest.mark.parametrize("name", [".", "..", "Upper", "a b", "a/b", "ä"])
def test_kernel_names_that_are_no_plain_directory_name_are_refused(name):
    refused(dict(BASE, kernel_name=name), "kernel_name")
    refused(dict(BASE, remote_kernel_name=name), "remote_kernel_name")


@pytest.mark.parametrize("text", ["   ", "\t", "a\nb", "a\x1bb"])
def test_display_name_must_be_one_printable_line(text):
    refused(dict(BASE, display_name=text), "display_name")


def test_ssh_config_must_exist_and_be_safe(tmp_path):
    good = tmp_path / "config"
    good.write_text("Host remote\n")
    good.chmod(0o600)
    assert validate(dict(BASE, ssh_config=str(good)))["ssh_config"] == str(good)
    refused(dict(BASE, ssh_config=str(tmp_path / "nope")), "ssh_config", "does not exist")
    good.chmod(0o620)
    refused(dict(BASE, ssh_config=str(good)), "ssh_config", "writable by group or others")
    refused(dict(BASE, ssh_config="-oProxyCommand=x"), "ssh_config", "starts with '-'")


# ---- mounts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, mount",
    [
        ("/a:/b", {"local_path": "/a", "remote_path": "/b", "sshfs_options": None}),
        ("/a:~/b", {"local_path": "/a", "remote_path": "~/b", "sshfs_options": None}),
        (
            "/a:/b:cache=no,max_read=65536",
            {"local_path": "/a", "remote_path": "/b", "sshfs_options": "cache=no,max_read=65536"},
        ),
        (
            "/a:/b:optional",
            {"local_path": "/a", "remote_path": "/b", "sshfs_options": None, "optional": True},
        ),
        (
            "/a:/b:ro:optional",
            {"local_path": "/a", "remote_path": "/b", "sshfs_options": "ro", "optional": True},
        ),
    ],
)
def test_mount_syntax_parses_and_formats_back(text, mount):
    assert parse_mount(text) == mount
    assert format_mount(mount) == text
    assert parse_mount(format_mount(mount)) == mount


def test_an_empty_options_part_is_no_options():
    assert parse_mount("/a:/b:") == {"local_path": "/a", "remote_path": "/b", "sshfs_options": None}
    assert format_mount(parse_mount("/a:/b:")) == "/a:/b"


@pytest.mark.parametrize(
    "text, field, words",
    [
        ("/a", "mount_local_on_remote", "must be '/local:/remote"),
        (":/b", "mount_local_on_remote", "must be '/local:/remote"),
        ("/a:", "mount_local_on_remote", "must be '/local:/remote"),
        ("/a:/b:c:d", "mount_local_on_remote", "must be '/local:/remote"),
        ("/a\n:/b", "mount_local_on_remote", "control characters"),
        ("/a:b", "mount_local_on_remote.remote_path", "must be absolute"),
        ("-a:/b", "mount_local_on_remote.local_path", "starts with '-'"),
        ("/a:/b;id", "mount_local_on_remote.remote_path", "shell metacharacters"),
        ("/a:/b:ssh_command=sh", "mount_local_on_remote.sshfs_options", "is not allowed"),
        ("/a:/b:directport=22", "mount_local_on_remote.sshfs_options", "is not allowed"),
        ("/a:/b:cache=no,-o", "mount_local_on_remote.sshfs_options", "name[=value]"),
        ("/a:/b:a b", "mount_local_on_remote.sshfs_options", "name[=value]"),
    ],
)
def test_bad_mount_specs_are_refused_naming_the_part(text, field, words):
    with pytest.raises(InvalidField) as e:
        parse_mount(text)
    assert e.value.field == field and words in e.value.message, e.value


def test_mount_spec_must_be_text():
    with pytest.raises(InvalidField, match="must be '/local:/remote"):
        parse_mount({"local_path": "/a"})


def test_validate_takes_mounts_as_text_or_objects_and_names_the_entry():
    out = validate(
        dict(
            BASE, mount_local_on_remote=["/a:/b:optional", {"local_path": "/c", "remote_path": "~"}]
        )
    )
    assert out["mount_local_on_remote"] == [
        {"local_path": "/a", "remote_path": "/b", "sshfs_options": None, "optional": True},
        {"local_path": "/c", "remote_path": "~"},
    ]
    bad = [{"local_path": "/c", "remote_path": "~"}, {"local_path": "/c", "remote_path": "x"}]
    refused(
        dict(BASE, mount_local_on_remote=bad), "mount_local_on_remote[1].remote_path", "absolute"
    )
    extra = [{"local_path": "/c", "remote_path": "~", "uid": 0}]
    refused(dict(BASE, mount_local_on_remote=extra), "mount_local_on_remote[0].uid", "unknown")
    missing = [{"local_path": "/c"}]
    refused(dict(BASE, mount_local_on_remote=missing), "mount_local_on_remote[0].remote_path")
    refused(dict(BASE, mount_local_on_remote=["/a:/b"] * 33), "mount_local_on_remote", "than 32")
    refused(dict(BASE, mount_local_on_remote=[3]), "mount_local_on_remote", "must be '/local")


# ---- SSHKernelConfig ------------------------------------------------------------------------


def test_config_from_dict_fills_the_schema_defaults():
    cfg = SSHKernelConfig.from_dict(dict(CONFIG))
    props = model.schema()["properties"]
    assert cfg.ssh_host_alias == "remote" and cfg.remote_python_prefix == "/opt/env"
    for name in model.CONFIG_FIELDS:
        if name not in CONFIG:
            assert getattr(cfg, name) == props[name].get("default"), name
    # the dataclass's own defaults agree with the schema's (both are read by someone)
    bare = SSHKernelConfig(**CONFIG)
    assert bare == cfg


def test_config_from_dict_refuses_what_validate_refuses():
    with pytest.raises(InvalidField) as e:
        SSHKernelConfig.from_dict(dict(CONFIG, ssh_host_alias="-oX"))
    assert e.value.field == "ssh_host_alias"
    with pytest.raises(InvalidField, match="display_name: unknown field"):
        SSHKernelConfig.from_dict(dict(CONFIG, display_name="x"))
    with pytest.raises(InvalidField, match="remote_kernel_name: is required"):
        SSHKernelConfig.from_dict({"ssh_host_alias": "h", "remote_python_prefix": "/p"})


def test_config_to_dict_keeps_only_what_differs_and_round_trips():
    assert SSHKernelConfig.from_dict(dict(CONFIG)).to_dict() == CONFIG
    custom = dict(CONFIG, launch_timeout=5, transport="tcp", mount_local_on_remote=["/a:/b"])
    cfg = SSHKernelConfig.from_dict(custom)
    d = cfg.to_dict()
    assert d["launch_timeout"] == 5 and d["transport"] == "tcp"
    assert d["mount_local_on_remote"] == [
        {"local_path": "/a", "remote_path": "/b", "sshfs_options": None}
    ]
    assert "shutdown_timeout" not in d
    assert SSHKernelConfig.from_dict(d) == cfg


def test_a_container_at_the_default_runtime_round_trips():
    # runtime is required and has a default (apptainer): to_dict keeps it, or kernel.json
    # would hold a container that is refused when read back
    cfg = SSHKernelConfig.from_dict(
        dict(CONFIG, container={"runtime": "apptainer", "image": "~/ml.sif"})
    )
    d = cfg.to_dict()
    assert d["container"] == {"runtime": "apptainer", "image": "~/ml.sif"}
    assert SSHKernelConfig.from_dict(d) == cfg
    assert cfg.container["python"] == "python3" and cfg.container["options"] == []
