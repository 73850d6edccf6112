"""Errors a user sees, each naming its cause in words they can act on."""

from __future__ import annotations

import base64
import re


class InvalidField(ValueError):
    """A field has a bad value; ``field`` names it (dotted for nested ones).  Raised by the
    model's validation and by ``localfiles`` (400 / exit 2); ``model.InvalidField`` is it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidFields(InvalidField):
    """Several fields have bad values (the model names them all at once); as an
    ``InvalidField`` it names the first, ``errors`` has each."""

    def __init__(self, errors: list[InvalidField]):
        first, more = errors[0], len(errors) - 1
        message = f"{first.message} (and {more} more)" if more else first.message
        super().__init__(first.field, message)
        self.errors = errors


class SSHPykError(RuntimeError):
    """Base of every error sshpyk raises on purpose; ``kind`` is machine-readable."""

    kind = "error"

    def __init__(self, message: str, *, kind: str | None = None, detail: str = ""):
        super().__init__(message)
        if kind:
            self.kind = kind
        self.detail = detail


class SSHConnectError(SSHPykError):
    """ssh could not reach or log in to the host."""


class RemoteLaunchError(SSHPykError):
    """The host was reached but the kernel could not be started there."""


class LaunchTimeout(SSHPykError):
    kind = "launch_timeout"


# ---- refusals of a request: the caller's input, not the environment -----------------------
# Raised by the domain (the kernelspec store, the registry, orphans); mapped to an HTTP status
# in ``server/base.py`` and to an exit code in the CLI, each in one place.


class Refused(SSHPykError):
    """The request cannot be done as asked; ``field`` names the input at fault."""

    kind = "refused"

    def __init__(self, message: str, *, field: str | None = None, kind: str | None = None):
        super().__init__(message, kind=kind)
        self.field = field


class KernelSpecError(Refused):
    """A kernelspec operation was refused (the spec or the edit is not acceptable)."""

    kind = "invalid_spec"


class KernelSpecNotFound(KernelSpecError):
    kind = "not_found"


class NotAnSSHKernel(KernelSpecError):
    """The kernelspec exists but is a local one, which sshpyk never manages."""

    kind = "not_ssh"


class Conflict(Refused):
    """The request clashes with what exists or runs now (a name taken, a kernel busy)."""

    kind = "conflict"


class KernelSpecConflict(KernelSpecError, Conflict):
    kind = "conflict"


# (pattern in ssh's stderr, kind, message template); first match wins
_SSH_FAILURES = [
    (
        r"Could not resolve hostname|Name or service not known|nodename nor servname",
        "unknown_host",
        "unknown host alias {alias!r}: it is not a Host in your ssh config and does not resolve "
        "as a hostname",
    ),
    (
        r"Permission denied \(|Too many authentication failures|no matching host key type",
        "auth_failed",
        "authentication to {alias!r} failed without a prompt. If the host asks for a "
        "password or a one-time code, log in once: `sshpyk login {alias}` in a terminal, or "
        "start the kernel from JupyterLab, which shows the host's questions; every kernel on "
        "the host then uses that login. Otherwise check the key: "
        "`ssh -o BatchMode=yes {alias} true`",
    ),
    (
        r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED",
        "host_key",
        "the host key of {alias!r} is unknown or has changed: `sshpyk login {alias}` (or a "
        "launch from JupyterLab) shows an unknown key's fingerprint to accept; a changed key "
        "is refused until you have checked why with the host's admins",
    ),
    (
        r"No route to host|Network is unreachable|Connection refused|Connection timed out|"
        r"Operation timed out|connect to host .* port|Connection closed by UNKNOWN|"
        r"kex_exchange_identification|Connection reset|not responding",
        "unreachable",
        "host {alias!r} is unreachable: {line}",
    ),
    (
        r"Bad configuration option|Bad owner or permissions|Can't open user config file|"
        r"no argument after keyword|Unsupported option|bad configuration",
        "bad_config",
        "ssh rejected the configuration: {summary}",
    ),
]

# What ssh says about a config it rejects, in its own fixed words.  Its messages quote the
# offending line ("Bad configuration option: -----begin"), and that line may come from any
# file a config names: only the file, the line number and one of these phrases are repeated.
_CONFIG_PROBLEMS = (
    "Bad configuration option",
    "Unsupported option",
    "no argument after keyword",
    "garbage at end of line",
    "extra arguments at end of line",
    "invalid quotes",
    "Missing argument",
    "Bad key types",
    "Bad Match condition",
)
_CONFIG_LINE = re.compile(r"^(?P<file>.+?):? line (?P<n>\d+)")
# lines of ssh that name only a path and a reason, never a file's contents
_CONFIG_SAFE = re.compile(
    r"^(Bad owner or permissions on \S+|Can't open user config file .*|"
    r".*: terminating, \d+ bad configuration options)$"
)


def config_error_summary(stderr: str, rc: int | None = None) -> str:
    """ssh's complaint about a config, without any of the config's own text."""
    found = []
    for line in (ln.strip() for ln in stderr.splitlines()):
        m = _CONFIG_LINE.match(line)
        if m:
            what = next((p for p in _CONFIG_PROBLEMS if p.lower() in line.lower()), "invalid")
            found.append(f"{m['file']} line {m['n']}: {what}")
        elif _CONFIG_SAFE.match(line):
            found.append(line)
    if found:
        return "; ".join(dict.fromkeys(found))
    return "ssh could not read the configuration" + (f" (exit {rc})" if rc is not None else "")


def classify_ssh_failure(stderr: str, alias: str) -> SSHConnectError:
    """Turn a failed ssh's stderr into an error that says what to fix."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for pattern, kind, template in _SSH_FAILURES:
        for line in lines:
            if re.search(pattern, line):
                if kind == "bad_config":
                    summary = config_error_summary(stderr)
                    return SSHConnectError(
                        template.format(summary=summary), kind=kind, detail=summary
                    )
                return SSHConnectError(
                    template.format(alias=alias, line=line), kind=kind, detail=stderr.strip()
                )
    last = lines[-1] if lines else "no error message"
    return SSHConnectError(
        f"ssh to {alias!r} failed: {last}", kind="ssh_failed", detail=stderr.strip()
    )


# ---- what a remote program's error means (sshpyk/remote/protocol.py) ------------------------
def _decoded(b64: object) -> str:
    """A prelude's output, as the host sent it (base64 of bytes in any encoding)."""
    try:
        return base64.b64decode(b64 or "").decode(errors="replace")
    except (ValueError, TypeError):
        return ""


def remote_failure(
    reply: dict,
    *,
    alias: str,
    prefix: str,
    kernel_name: str | None = None,
    otherwise: str | None = None,
) -> str:
    """The sentence for a remote program's ``{"error": kind, ...}`` answer: the one table
    from a remote error kind to words the user can act on.  ``otherwise``: the sentence for
    a kind not in the table (default: the program's own message, and a launch's kernel log)."""
    kind = reply.get("error")
    if kind == "prefix_missing":
        return f"remote python prefix {prefix!r} does not exist on {alias!r}"
    if kind == "python_missing":
        return f"{prefix}/bin/python (or python3) on {alias!r} is missing or not executable"
    if kind == "kernelspec_not_found":
        avail = ", ".join(reply.get("available") or []) or "none"
        return (
            f"remote kernelspec {kernel_name!r} not found in {prefix!r} on {alias!r}; "
            f"available: {avail}"
        )
    if kind == "jupyter_client_missing":
        return (
            f"jupyter_client is not installed in {prefix!r} on {alias!r} "
            f"(python {reply.get('python', '?')}): pip install jupyter_client there"
        )
    if kind == "cwd_missing":
        return f"{reply.get('message')} ({alias!r}): create it, or change remote_cwd"
    if kind == "prelude_failed":
        output = _decoded(reply.get("output"))
        return (
            f"the kernelspec's prelude failed on {alias!r}: line {reply.get('line')} "
            f"ended with exit status {reply.get('rc')}"
            + (f"; its output:\n{output[-1500:]}" if output.strip() else " and said nothing")
        )
    if kind == "sshfs_missing":
        return f"{reply['message']}: install sshfs on {alias} (Debian: apt-get install sshfs)"
    if otherwise is not None:
        return otherwise
    msg = f"{reply.get('message', kind)} (on {alias!r})"
    if reply.get("log"):
        msg += f"; kernel log:\n{reply['log'][-1500:]}"
    return msg
