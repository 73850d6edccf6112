"""The askpass program ssh runs for a login made through the server (``bridge.py``).

ssh starts it with its question as the only argument (``SSH_ASKPASS``, forced by
``SSH_ASKPASS_REQUIRE=force``) and ``SSH_ASKPASS_PROMPT`` set to ``confirm`` for a yes/no
question or ``none`` for a notice (e.g. "touch your security key").  It passes the question
to the login's socket (``SSHPYK_ASKPASS_SOCKET``: a path in the user's 0700 control dir),
waits for the answer, and prints it on stdout, which only ssh reads; it exits 1 when the user
cancels or the server goes away, and ssh gives up that question.

It runs as ``python -I -S`` from a copy the server writes next to the socket (``bridge.
install``): the standard library only, and nothing from the user's site or environment.
"""

import json
import os
import socket
import sys

# the longest a question waits for its answer: ssh's own LoginGraceTime (sshd's default,
# 120 s) ends the attempt sooner on most hosts
WAIT = 600


def main(argv):
    path = os.environ.get("SSHPYK_ASKPASS_SOCKET")
    if not path or len(argv) < 2:
        return 1
    question = {"text": argv[1], "hint": os.environ.get("SSH_ASKPASS_PROMPT", "")}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(WAIT)
            sock.connect(path)
            sock.sendall(json.dumps(question).encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    return 1  # the login was cancelled or the server went away
                reply += chunk
        answer = json.loads(reply)
    except (OSError, ValueError):
        return 1
    if not isinstance(answer, dict) or not isinstance(answer.get("answer"), str):
        return 1
    out = sys.stdout.buffer
    out.write(answer["answer"].encode() + b"\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
