"""The text of the demo's ``sshd_config`` and client ``ssh_config``: loopback only, public
key only, forwarding of local ports and sockets only, and nothing read from ~/.ssh or
/etc/ssh on either side."""

from __future__ import annotations

import os
from pathlib import Path

from .files import DemoError

ALIAS = "sshpyk-demo"  # the Host of the client config, the kernelspec's ssh_host_alias
ENV_MARK = "SSHPYK_DEMO"  # set in every session: how the processes of the demo are found


def quote_path(value: object, tokens: bool = False) -> str:
    """A path quoted for sshd_config/ssh_config (argv-style parsing; with ``tokens``, where
    ssh expands %-tokens, a literal ``%`` doubled)."""
    s = str(value)
    if any(c in s for c in '"\\\n\r\t') or not s.isprintable():
        raise DemoError(f"unsupported character in path {s!r}; set JUPYTER_DATA_DIR elsewhere")
    if tokens:
        s = s.replace("%", "%%")
    return f'"{s}"'


def sshd_config(root: Path, port: int, user: str, *, as_root: bool | None = None) -> str:
    """The demo sshd's config; ``as_root`` (default: whether we run as root) lets root log
    in with its key, which sshd otherwise refuses."""
    if as_root is None:
        as_root = os.geteuid() == 0
    root_login = "PermitRootLogin prohibit-password\n" if as_root else ""
    return f"""\
# Private sshd of `sshpyk demo` (not the system service); remove with `sshpyk demo --stop`.
Port {port}
ListenAddress 127.0.0.1
HostKey {quote_path(root / "ssh_host_ed25519_key")}
PidFile {quote_path(root / "sshd.pid")}
AuthorizedKeysFile {quote_path(root / "authorized_keys", tokens=True)}
# our own 0700 directory guards the files, whatever the modes of the dirs above it
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthenticationMethods publickey
AllowUsers {user}
{root_login}AllowTcpForwarding local
AllowStreamLocalForwarding local
X11Forwarding no
PermitTunnel no
GatewayPorts no
# ~/.ssh/rc would make the demo depend on (and run code from) the user's ~/.ssh
PermitUserRC no
PermitUserEnvironment no
PrintMotd no
PrintLastLog no
UseDNS no
# sshpyk multiplexes every kernel of a host over one connection (default is 10)
MaxSessions 100
MaxStartups 100:30:200
Subsystem sftp internal-sftp
# every session's processes carry this, which is how stop_sandbox finds kernels to end
SetEnv {quote_path(f"{ENV_MARK}={root}")}
LogLevel VERBOSE
"""


def client_config(root: Path, port: int, user: str, key: Path) -> str:
    """The client config the demo kernelspec names (``ssh -F <root>/ssh_config``)."""
    return f"""\
# ssh client config of `sshpyk demo`: always used as `ssh -F {root / "ssh_config"}`,
# so ~/.ssh/config and /etc/ssh/ssh_config are never read.
Host {ALIAS}
  HostName 127.0.0.1
  Port {port}
  User {user}
  IdentityFile {quote_path(key, tokens=True)}
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile {quote_path(root / "known_hosts", tokens=True)}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  BatchMode yes
  ConnectTimeout 5
"""


def known_hosts_line(port: int, host_key: str) -> str:
    """The one known host of the client: the demo sshd's key, pinned to its port."""
    return f"[127.0.0.1]:{port} {host_key}\n"
