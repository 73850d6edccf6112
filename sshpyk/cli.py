"""``sshpyk`` / ``jupyter sshpyk``: manage SSH kernels from the shell.

Exit status: 0 done, 1 something failed (a check, a connection), 2 bad input — in which
case nothing was run and nothing was written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shlex
import sys
import time
from typing import Any

from . import __version__, orphans, registry
from .checks import CHECK_IDS, FAIL, OK, SKIPPED, TITLES, WARN, Check, Checker, check_many
from .kernelspecs import (
    KernelEntry,
    KernelSpecError,
    delete,
    get_ssh_entry,
    list_entries,
    update,
    write,
)
from .model import InvalidField, check_alias, format_mount, parse_mount, schema, validate
from .transport import Target

log = logging.getLogger("sshpyk")
EXIT_FAILED, EXIT_USAGE = 1, 2
DEMO_KERNEL = "ssh-demo"
DEMO_DISPLAY = "Python (SSH demo: localhost)"


# Every field of the kernelspec schema is an option named after it (lease_timeout ->
# --lease-timeout), for add and edit: a field added to the schema is an option at once and
# can never be forgotten here (tests/test_cli_options.py walks the schema to make sure).
def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


OPTIONS = {_option(field): field for field in schema()["properties"]}
MOUNTS = "mount_local_on_remote"  # a list: repeatable --mount-local-on-remote /L:/R[:...]


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 too; keep our prefix and wording
        self.print_usage(sys.stderr)
        raise UsageError(message)


# ---- output --------------------------------------------------------------------------------------


class Style:
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def _c(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def mark(self, status: str) -> str:
        return {
            OK: self._c("32", "(v)"),
            WARN: self._c("33", "(!)"),
            FAIL: self._c("31", "(x)"),
            SKIPPED: self._c("90", "(-)"),
        }.get(status, "")

    def head(self, text: str) -> str:
        return self._c("1", text)


def _fields(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows) + 2
    return "\n".join(f"{k + ':':<{width}}{v}".rstrip() for k, v in rows)


def _local_rows(e: KernelEntry) -> list[tuple[str, str]]:
    raw = e.raw or {}
    if e.error:
        return [("Name", e.name), ("Resource Dir", e.resource_dir), ("Error", e.error)]
    return [
        ("Name", e.name),
        ("Display Name", raw.get("display_name", "")),
        ("Resource Dir", e.resource_dir),
        ("Command", shlex.join(raw.get("argv") or [])),
        ("Language", raw.get("language", "")),
        ("Interrupt Mode", raw.get("interrupt_mode", "signal")),
    ]


def _ssh_rows(e: KernelEntry, checks: list[Check] | None, st: Style) -> list[tuple[str, str]]:
    raw, m = e.raw or {}, e.model
    if m is None:
        return [
            ("Name", e.name),
            ("Display Name", raw.get("display_name", "")),
            ("Resource Dir", e.resource_dir),
            ("Error", f"{st.mark(FAIL)} {e.error}"),
        ]
    by = {c.id: c for c in checks or []}

    def v(text: Any, *ids: str) -> str:
        marks = [by[i] for i in ids if i in by]
        if not marks:
            return str(text)
        worst = max(marks, key=lambda c: [OK, SKIPPED, WARN, FAIL].index(c.status))
        hint = f"  {worst.hint}" if worst.status in (FAIL, WARN) and worst.hint else ""
        return f"{text} {st.mark(worst.status)}{hint}"

    remote = by.get("remote_kernel")
    rdata = (remote.data or {}) if remote and remote.status == OK else {}
    mounts = m.get("mount_local_on_remote") or []
    rows = [
        ("Name", m["kernel_name"]),
        ("Display Name", m["display_name"]),
        ("Resource Dir", e.resource_dir),
        ("Command", "(sshpyk-provisioner)"),
        ("Language", m["language"]),
        ("Interrupt Mode", m["interrupt_mode"]),
        ("SSH Host Alias", v(m["ssh_host_alias"] + _alias_detail(by), "host_alias", "connection")),
        ("SSH Path", v(m.get("ssh") or "ssh", "ssh_client")),
        ("SSH Config", v(m.get("ssh_config") or "(default)", "ssh_config")),
        (
            "Remote System",
            v(by["remote_system"].value if "remote_system" in by else "", "remote_system"),
        ),
        ("Remote Interrupt Mode", v(rdata.get("interrupt_mode", ""), "remote_kernel")),
        ("Remote Python Prefix", v(m["remote_python_prefix"], "remote_python", "jupyter_client")),
        ("Remote Kernel Name", v(m["remote_kernel_name"], "remote_kernel")),
        ("Launch Timeout", str(m["launch_timeout"])),
        ("Shutdown Timeout", str(m["shutdown_timeout"])),
        ("Lease Timeout", str(m["lease_timeout"])),
        ("Lost Timeout", str(m["lost_timeout"])),
        ("Transport", v(m["transport"], "port_forwarding")),
        (
            "Remote Command",
            v(remote.value if remote and remote.status == OK else "", "remote_kernel"),
        ),
        ("SSHFS Mounting", v("yes" if mounts else "no", "sshfs") if mounts else "no"),
    ]
    rows += [(f"  Mount {i + 1}", format_mount(mt)) for i, mt in enumerate(mounts)]
    if not checks:
        rows = [
            (k, val)
            for k, val in rows
            if k not in ("Remote System", "Remote Interrupt Mode", "Remote Command")
        ]
    return rows


def _alias_detail(by: dict[str, Check]) -> str:
    c = by.get("host_alias")
    return f" ({c.value})" if c and c.value else ""


def _entry_json(e: KernelEntry, checks: list[Check] | None) -> dict[str, Any]:
    out = e.to_dict()
    if checks is not None:
        out["checks"] = [c.to_dict() for c in checks]
    return out


# ---- commands ------------------------------------------------------------------------------------


class Progress:
    """One refreshed status line on stderr for work that takes over a second, e.g.
    "checking 2 hosts… (gpu-box, login1) 3 s".  Only on a terminal: pipes and CI logs get
    no carriage returns or escape codes."""

    DELAY, EVERY = 1.0, 0.2

    def __init__(self, text, stream=None):
        self.text = text  # () -> str | None: what is being waited for now (None: nothing)
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.shown = False
        self.t0 = time.monotonic()

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False

    def draw(self) -> None:
        took = time.monotonic() - self.t0
        text = self.text()
        if not self.enabled or took < self.DELAY or not text:
            return
        self.stream.write(f"\r\033[K{text} {took:.0f} s")
        self.stream.flush()
        self.shown = True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.EVERY)
            self.draw()


async def _with_progress(coro, text: str):
    """``coro``'s result, with ``text`` as the progress line while it takes over a second."""
    progress = Progress(lambda: text)
    ticker = asyncio.ensure_future(progress.run())
    try:
        return await coro
    finally:
        ticker.cancel()
        progress.clear()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _unanswered(model: dict, got: list[Check], timeout: float, error: str = "") -> list[Check]:
    """The checks of a kernel whose host did not answer in time: what was known stays, the
    first missing check fails saying so, the rest are skipped."""
    have = {c.id for c in got}
    todo = [
        cid
        for cid in CHECK_IDS
        if cid not in have and (cid != "sshfs" or model.get("mount_local_on_remote"))
    ]
    alias = model["ssh_host_alias"]
    why = error or f"no answer from {alias} within {timeout:g} s"
    out = list(got)
    for i, cid in enumerate(todo):
        if i == 0:
            out.append(Check(cid, TITLES[cid], FAIL, "no answer" if not error else "", why))
        else:
            out.append(Check(cid, TITLES[cid], SKIPPED, hint=why))
    return out


LATE = 0.5  # s after a kernel is given up on that its work ends


async def check_per_host(models: list[dict], timeout: float, on_done=None):
    """Check every kernel at once, each within ``timeout`` seconds of the start: a host that
    does not answer costs its own kernels that time, never the others'.  ``on_done(name,
    checks)`` as soon as a kernel is known, in the order they finish; meanwhile, on a
    terminal, which hosts are still being waited for."""
    loop = asyncio.get_running_loop()
    # every piece of work ends by its own timeout a little after a kernel is given up on,
    # so what is given up on is killed and reaped, never left running after the CLI
    checker = Checker(timeout, deadline=loop.time() + timeout + LATE)
    given_up: list[asyncio.Task] = []
    results: dict[str, list[Check]] = {}
    waiting = {m["kernel_name"]: m["ssh_host_alias"] for m in models}

    def status() -> str | None:
        hosts = sorted(set(waiting.values()))
        if not hosts:
            return None
        more = ", …" if len(hosts) > 4 else ""
        return f"checking {_plural(len(hosts), 'host')}… ({', '.join(hosts[:4])}{more})"

    progress = Progress(status)
    ticker = asyncio.ensure_future(progress.run())

    async def one(model: dict) -> None:
        got: list[Check] = []
        task = asyncio.ensure_future(checker.check(model, got.append))
        await asyncio.wait({task}, timeout=timeout)
        if not task.done():
            given_up.append(task)
            checks = _unanswered(model, got, timeout)
        elif task.exception() is not None:
            checks = _unanswered(model, got, timeout, f"the check broke: {task.exception()}")
        else:
            checks = task.result()
        name = model["kernel_name"]
        results[name] = checks
        waiting.pop(name, None)
        if on_done:
            progress.clear()
            on_done(name, checks)

    try:
        await asyncio.gather(*(one(m) for m in models))
        if given_up:  # every row is out; let their work end by its own (reaping) timeouts
            await asyncio.wait(given_up, timeout=LATE + 5)
            for task in given_up:  # their outcome no longer matters: never log it
                if task.done():
                    task.exception()
                else:
                    task.cancel()
    finally:
        ticker.cancel()
        progress.clear()
    return results


def cmd_list(args) -> int:
    entries = list_entries()
    want_local = args.local or not args.remote
    want_ssh = args.remote or not args.local
    local = [e for e in entries if not e.is_ssh] if want_local else []
    ssh = [e for e in entries if e.is_ssh] if want_ssh else []
    check = bool(ssh) and not args.no_check
    models = [e.model for e in ssh if e.model]
    if args.json:  # one document, at the end
        checks = asyncio.run(check_per_host(models, args.timeout)) if check else {}
        out = {
            "local": [_entry_json(e, None) for e in local],
            "ssh": [_entry_json(e, checks.get(e.name) if check else None) for e in ssh],
        }
        print(json.dumps(out, indent=1))
        return 0
    st = Style(sys.stdout.isatty())
    printed = 0

    def block(text: str) -> None:
        # each kernel's block is written whole and flushed: blocks never interleave and a
        # pipe sees each one as soon as it is known
        nonlocal printed
        print(("\n" if printed else "") + text, flush=True)
        printed += 1

    def ssh_block(e: KernelEntry, checks: list[Check] | None) -> None:
        block(st.head("------ SSH Kernel -------") + "\n" + _fields(_ssh_rows(e, checks, st)))

    for e in local:  # known at once: never wait for a host to show them
        block(st.head("----- Local Kernel ------") + "\n" + _fields(_local_rows(e)))
    for e in ssh:
        if not check or e.model is None:  # nothing to wait for
            ssh_block(e, None)
    if check and models:
        by_name = {e.name: e for e in ssh}
        asyncio.run(
            check_per_host(
                models,
                args.timeout,
                on_done=lambda name, checks: ssh_block(by_name[name], checks),
            )
        )
    if not printed:
        print("no kernels")
    return 0


def _given(args) -> dict[str, Any]:
    return {
        key: getattr(args, key)
        for key in OPTIONS.values()
        if key != MOUNTS and getattr(args, key, None) is not None
    }


def _kernel_name(args) -> str:
    """The kernel a command acts on: ``NAME`` or ``--kernel-name NAME`` (kept for
    compatibility), exactly one of them."""
    if args.name and args.kernel_name:
        raise UsageError(
            f"give the kernel name once: 'sshpyk {args.command} NAME' "
            "or '--kernel-name NAME', not both"
        )
    name = args.name or args.kernel_name
    if not name:
        raise UsageError(f"which kernel? give its name: sshpyk {args.command} NAME")
    return name


def _new_mounts(args) -> list[dict[str, Any]]:
    return [parse_mount(s) for s in args.mount_local_on_remote or []]


def cmd_add(args) -> int:
    data = {"interrupt_mode": "message", **_given(args)}
    data["mount_local_on_remote"] = _new_mounts(args)
    entry = write(data, replace=args.replace)
    print(f"added SSH kernel {entry.name!r} in {entry.resource_dir}")
    return 0


def cmd_edit(args) -> int:
    name = _kernel_name(args)
    entry = get_ssh_entry(name)
    patch = _given(args)
    patch.pop("kernel_name", None)
    for key in args.clear or []:
        if key not in schema()["properties"] or key == "kernel_name":
            raise InvalidField(key, "unknown field (see --help for what --clear accepts)")
        patch[key] = None
    if args.remove_mounts or args.remove_mount or args.mount_local_on_remote:
        mounts = (
            []
            if args.remove_mounts
            else list((entry.model or {}).get("mount_local_on_remote") or [])
        )
        for path in args.remove_mount or []:
            kept = [m for m in mounts if m["remote_path"] != path]
            if len(kept) == len(mounts):
                raise InvalidField("remove_mount", f"no mount at remote path {path!r}")
            mounts = kept
        patch["mount_local_on_remote"] = mounts + _new_mounts(args)
    if not patch:
        raise UsageError("nothing to change: give at least one option")
    entry = update(name, patch)
    print(f"updated SSH kernel {entry.name!r}")
    return 0


def cmd_delete(args) -> int:
    name = _kernel_name(args)
    delete(name)
    print(f"deleted SSH kernel {name!r}")
    return 0


def cmd_check(args) -> int:
    entry = get_ssh_entry(_kernel_name(args), valid=True)
    st = Style(sys.stdout.isatty())
    done: set[str] = set()
    alias = entry.model["ssh_host_alias"]

    def waiting() -> str | None:  # the check under way: the first one not reported yet
        todo = [cid for cid in CHECK_IDS if cid not in done]
        return f"checking {alias}: {TITLES[todo[0]]}…" if todo else None

    progress = Progress(waiting)

    def live(name, c: Check):
        done.add(c.id)
        progress.clear()
        if not args.json:
            hint = f"\n      {c.hint}" if c.hint and c.status != OK else ""
            print(f"{st.mark(c.status)} {c.title}: {c.value}{hint}", flush=True)

    async def run():
        ticker = asyncio.ensure_future(progress.run())
        try:
            return await check_many([entry.model], on_result=live, timeout=args.timeout)
        finally:
            ticker.cancel()
            progress.clear()

    results = asyncio.run(run())
    checks = results[entry.name]
    if args.json:
        print(json.dumps({"name": entry.name, "checks": [c.to_dict() for c in checks]}, indent=1))
    return EXIT_FAILED if any(c.status == FAIL for c in checks) else 0


def cmd_ps(args) -> int:
    records, bad = registry.all_records()
    hosts = sorted({r.config.get("ssh_host_alias", "?") for r in records})
    found = (
        asyncio.run(
            _with_progress(
                orphans.probe(records),
                f"asking {_plural(len(hosts), 'host')}… ({', '.join(hosts[:4])})",
            )
        )
        if records
        else []
    )
    if args.json:
        print(json.dumps({"kernels": found, "unreadable": bad}, indent=1))
        return 0
    if not found:
        print("no SSH kernel started from this machine is running")
    rows = [("KERNEL", "KERNELSPEC", "HOST", "STARTED", "SERVER", "ON THE HOST")]
    for k in found:
        if not k["reachable"]:
            remote = "unreachable"
        elif k.get("elsewhere"):
            # a home directory shared by several hosts: this connection reached another one
            remote = f"on another host ({k['on_host']})"
        elif not k["alive"]:
            remote = "ended"
        elif k["attached"]:
            remote = "running, attached"
        else:
            remote = f"running, detached for {k['lease_age']:.0f}s"
        server = f"gone (pid {k['server_pid']})" if k["orphan"] else f"pid {k['server_pid']}"
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(k["started_at"]))
        rows.append((k["kernel_id"], k["kernelspec"], k["host_alias"], started, server, remote))
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for name in bad:
        print(f"unreadable registry record: {name}", file=sys.stderr)
    return 0


def _reap_prefix(args) -> tuple[str | None, str | None, str]:
    """ssh config, ssh and remote prefix for reaping ``host_alias``: given, or those of a
    kernel of that host this machine knows."""
    if args.remote_python_prefix:
        return args.ssh_config, args.ssh, args.remote_python_prefix
    records, _ = registry.all_records()
    for c in [r.config for r in records] + [e.model for e in list_entries() if e.model]:
        if c.get("ssh_host_alias") == args.host_alias:
            return (
                args.ssh_config or c.get("ssh_config"),
                args.ssh or c.get("ssh"),
                c["remote_python_prefix"],
            )
    raise UsageError(
        f"no SSH kernel of host {args.host_alias!r} is known here: "
        "give --remote-python-prefix (a python on that host)"
    )


def cmd_reap(args) -> int:
    check_alias("host_alias", args.host_alias)
    for name in ("ssh_config", "remote_python_prefix"):
        if getattr(args, name):
            validate({name: getattr(args, name)}, only=(name,))
    config, ssh, prefix = _reap_prefix(args)
    if config:  # one a record or kernelspec names may have changed since it was written
        validate({"ssh_config": config}, only=("ssh_config",))
    target = Target(args.host_alias, ssh or "ssh", config)
    result = asyncio.run(
        _with_progress(
            orphans.reap(target, prefix, everything=args.all), f"reaping on {args.host_alias}…"
        )
    )
    for rundir in result["reaped"]:
        print(f"reaped {rundir}")
    for k in result["kernels"]:
        if k.get("where") == "elsewhere":
            print(f"left alone {k['rundir']}: on another host ({k.get('hostname')})")
    left = [k for k in result["kernels"] if k.get("alive")]
    print(
        f"{len(result['reaped'])} reaped on {args.host_alias}; {len(left)} kernel(s) still running"
    )
    return 0


def cmd_demo(args) -> int:
    from .demo import load_sandbox, shell_command, start_sandbox, stop_sandbox

    if args.stop:
        sandbox = load_sandbox()
        with contextlib.suppress(KernelSpecError):  # already gone
            delete(DEMO_KERNEL)
        left = stop_sandbox()
        if left:
            print(f"demo stopped, but left: {', '.join(left)}", file=sys.stderr)
            return EXIT_FAILED
        print(
            "demo stopped: sshd, keys, config and the demo kernel are gone"
            if sandbox
            else "no demo was running"
        )
        return 0
    sandbox = start_sandbox()
    write(
        {
            "kernel_name": DEMO_KERNEL,
            "display_name": DEMO_DISPLAY,
            "language": "python",
            "ssh_host_alias": sandbox.alias,
            "ssh_config": str(sandbox.ssh_config),
            "remote_python_prefix": sandbox.remote_python_prefix,
            "remote_kernel_name": "python3",
        },
        replace=True,
    )
    me, lab = shell_command("sshpyk"), shell_command("jupyter") + " lab"
    print(f"""sshpyk demo is running: a private sshd on 127.0.0.1:{sandbox.port} \
(pid {sandbox.sshd_pid}) with its own keys and ssh config in {sandbox.root};
your ~/.ssh is untouched.

Registered the SSH kernel {DEMO_DISPLAY!r} ({DEMO_KERNEL}). Next:
  {lab:<33}# then pick "{DEMO_DISPLAY}" in the launcher
  {me} check {DEMO_KERNEL}
  {me + " demo --stop":<33}# removes all of it""")
    return 0


# ---- parser --------------------------------------------------------------------------------------


def _add_model_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    props = schema()["properties"]
    req = set(schema()["required"]) if required else set()
    for opt, key in OPTIONS.items():
        if key == "kernel_name":  # names the kernel: each command takes it its own way
            continue
        rule = props[key]
        if key == MOUNTS:
            p.add_argument(
                opt,
                dest=key,
                action="append",
                metavar="/LOCAL:/REMOTE[:OPTIONS][:optional]",
                help="mount a local directory on the remote host (repeatable); ':optional' "
                "starts the kernel even when the mount fails",
            )
            continue
        kinds = set(rule["type"] if isinstance(rule["type"], list) else [rule["type"]])
        kw: dict[str, Any] = {"dest": key, "required": key in req}
        if kinds == {"integer"}:
            kw["type"] = int
            kw["metavar"] = "S" if key.endswith("_timeout") else "N"
        elif kinds <= {"string", "null"}:
            kw["type"] = str
        else:  # a new kind of field needs its own option: fail loudly, not silently skip it
            raise TypeError(f"no command-line option for schema field {key!r} ({rule['type']})")
        if "enum" in rule:
            kw["choices"] = rule["enum"]
        notes = []
        if "minimum" in rule:
            notes.append(f"{rule['minimum']}-{rule['maximum']}")
        if rule.get("default") not in (None, []):
            notes.append(f"default {rule['default']}")
        kw["help"] = rule.get("description", "") + (f" ({', '.join(notes)})" if notes else "")
        p.add_argument(opt, **kw)


def _add_name(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="the kernel name")
    p.add_argument("--kernel-name", dest="kernel_name", help="the same as NAME (older form)")


def build_parser() -> Parser:
    parser = Parser(
        prog="sshpyk", description="Remote Jupyter kernels over SSH, as if they were local."
    )
    parser.add_argument("--version", action="version", version=f"sshpyk {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="-v warnings, -vv info, -vvv debug"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("list", help="list local and SSH kernels, checking the SSH ones")
    p.add_argument("-r", "--remote", action="store_true", help="only SSH kernels")
    p.add_argument("-l", "--local", action="store_true", help="only local kernels")
    p.add_argument("-n", "--no-check", action="store_true", help="skip the remote checks")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--timeout",
        type=int,
        default=20,
        metavar="S",
        help="seconds each host gets to answer its checks (default 20); a host that does not "
        "answer delays only its own kernels, listed last",
    )
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("add", help="add an SSH kernel")
    p.add_argument(
        "--kernel-name",
        dest="kernel_name",
        required=True,
        help="name of the new kernelspec (^[a-z0-9._-]+$)",
    )
    _add_model_options(p, required=True)
    p.add_argument("--replace", action="store_true", help="overwrite an SSH kernel of that name")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("edit", help="change an SSH kernel")
    _add_name(p)
    _add_model_options(p, required=False)
    p.add_argument(
        "--clear",
        action="append",
        metavar="FIELD",
        help="put an optional field back to its default, e.g. --clear ssh_config",
    )
    p.add_argument(
        "--remove-mount",
        action="append",
        metavar="/REMOTE",
        help="remove the mount at this remote path",
    )
    p.add_argument("--remove-mounts", action="store_true", help="remove every mount")
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("delete", help="delete an SSH kernel (never a local one)")
    _add_name(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("check", help="run every remote check of one SSH kernel")
    _add_name(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=int, default=20, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("ps", help="SSH kernels started from this machine that still run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ps)

    p = sub.add_parser(
        "reap",
        help="end a host's SSH kernels that nothing uses any more and clear their leftovers",
    )
    p.add_argument("host_alias", metavar="HOST_ALIAS")
    p.add_argument("--ssh-config", dest="ssh_config")
    p.add_argument("--ssh")
    p.add_argument("--remote-python-prefix", dest="remote_python_prefix")
    p.add_argument(
        "--all", action="store_true", help="end every sshpyk kernel there, even ones in use"
    )
    p.set_defaults(func=cmd_reap)

    p = sub.add_parser("demo", help="a private loopback sshd and an SSH kernel to try sshpyk")
    p.add_argument("--stop", action="store_true", help="remove the demo sandbox and its kernel")
    p.set_defaults(func=cmd_demo)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("SSHPYK %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _setup_logging(args.verbose)
        if not args.command:
            parser.print_help()
            return 0
        return args.func(args)
    except UsageError as e:
        print(f"sshpyk: {e}", file=sys.stderr)
        return EXIT_USAGE
    except InvalidField as e:
        print(f"sshpyk: invalid {e.field}: {e.message}", file=sys.stderr)
        return EXIT_USAGE
    except KernelSpecError as e:
        print(f"sshpyk: {e}", file=sys.stderr)
        return EXIT_USAGE if e.status in (400, 404, 409, 422) else EXIT_FAILED
    except Exception as e:  # a failure of the environment, not of the input
        log.debug("failed", exc_info=True)
        print(f"sshpyk: {e}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
