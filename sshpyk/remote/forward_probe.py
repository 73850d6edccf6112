# A listener for the "port forwarding" check (sent by sshpyk.checks; the wire:
# sshpyk/remote/protocol.py; the prelude is sent ahead of this program).  It listens on the
# kernel's kind of endpoint (a 127.0.0.1 port, or a unix socket in a private temporary dir
# for ipc), reports where, and greets the first connection with the byte a ZeroMQ peer
# greets with (0xFF), so the local side can tell a forwarded channel that opens from one
# the host's sshd refuses.
import os
import select
import shutil
import socket
import sys
import tempfile

from ._prelude import emit, read_params  # sshpyk: bundled

p = read_params()
d = None
if p["transport"] == "ipc":
    d = tempfile.mkdtemp(prefix="sshpyk-probe-")
    addr = os.path.join(d, "s")
    s = socket.socket(socket.AF_UNIX)
    s.bind(addr)
else:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    addr = s.getsockname()[1]
s.listen(1)
emit(probe=addr)
try:
    # a connection, or the end of the session (stdin closes): whichever comes first
    if s in select.select([s, sys.stdin], [], [], p["timeout"])[0]:
        c, _ = s.accept()
        c.sendall(b"\xff")
        c.close()
except OSError:
    pass
finally:
    s.close()
    if d:
        shutil.rmtree(d, ignore_errors=True)
