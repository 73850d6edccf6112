"""Errors a user sees, each naming its cause in words they can act on."""

from __future__ import annotations

import re


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
        "authentication to {alias!r} failed: sshpyk needs key-based login that works without "
        "a prompt (BatchMode); check that `ssh -o BatchMode=yes {alias} true` succeeds",
    ),
    (
        r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED",
        "host_key",
        "the host key of {alias!r} is unknown or has changed: connect once by hand "
        "(`ssh {alias}`), verify the fingerprint, and try again",
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
        "ssh rejected the configuration: {line}",
    ),
]


def classify_ssh_failure(stderr: str, alias: str) -> SSHConnectError:
    """Turn a failed ssh's stderr into an error that says what to fix."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for pattern, kind, template in _SSH_FAILURES:
        for line in lines:
            if re.search(pattern, line):
                return SSHConnectError(
                    template.format(alias=alias, line=line), kind=kind, detail=stderr.strip()
                )
    last = lines[-1] if lines else "no error message"
    return SSHConnectError(
        f"ssh to {alias!r} failed: {last}", kind="ssh_failed", detail=stderr.strip()
    )
