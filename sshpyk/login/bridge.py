"""The server's side of ssh's askpass, for one login: a unix socket in the user's 0700
control dir where ``askpass.py`` brings each of ssh's questions; the question waits there
(``prompt``) for the user's answer (``answer``) or cancel (``cancel``).

``install`` writes the askpass program ssh runs (``SSH_ASKPASS`` must name an executable):
``python -IS`` and the text of ``askpass.py``, in the same private directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ASKPASS = Path(__file__).with_name("askpass.py")
QUESTION_LIMIT = 64 << 10  # bytes: a question longer than this is no ssh question


@dataclass(frozen=True)
class Prompt:
    """One of ssh's questions: ``text`` verbatim; ``echo``: the answer may show as typed."""

    id: str
    text: str
    echo: bool

    def to_json(self) -> dict:
        return {"id": self.id, "text": self.text, "echo": self.echo}


def shows_answer(text: str, hint: str) -> bool:
    """ssh marks a yes/no question with SSH_ASKPASS_PROMPT=confirm (or a notice with none),
    except the host-key question, which comes unmarked like a password: its words tell."""
    return hint in ("confirm", "none") or "(yes/no" in text


def install(directory: Path) -> Path:
    """The askpass program in ``directory`` (private, the user's), written when missing or
    different (another Python, another sshpyk)."""
    path = directory / "askpass"
    text = f"#!{sys.executable} -IS\n" + ASKPASS.read_text()
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            return path
    tmp = directory / f".askpass-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


class Bridge:
    """ssh's questions for one login, from its askpass to whoever answers them."""

    def __init__(self, directory: Path, on_change: Callable[[], None] = lambda: None):
        self.directory = directory
        self.path = directory / f"login-{secrets.token_hex(6)}.sock"
        self.on_change = on_change
        self.prompt: Prompt | None = None
        self._answer: asyncio.Future | None = None
        self._server: asyncio.AbstractServer | None = None

    @property
    def env(self) -> dict[str, str]:
        """What the ssh making the master needs (paths only: never an answer)."""
        return {
            "SSH_ASKPASS": str(install(self.directory)),
            "SSH_ASKPASS_REQUIRE": "force",  # OpenSSH >= 8.4: askpass even without DISPLAY
            "SSHPYK_ASKPASS_SOCKET": str(self.path),
        }

    async def start(self) -> None:
        old = os.umask(0o177)  # the socket is born 0600 (and its directory is 0700)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=QUESTION_LIMIT
            )
        finally:
            os.umask(old)

    async def close(self) -> None:
        self.cancel()
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def answer(self, prompt_id: str, text: str) -> bool:
        """Send ``text`` to ssh as the answer to ``prompt_id``; False when that question is
        no longer asked (answered already, or ssh moved on)."""
        if self.prompt is None or self.prompt.id != prompt_id or self._answer is None:
            return False
        if self._answer.done():
            return False
        self._answer.set_result(text)
        return True

    def cancel(self) -> None:
        """The question asked now is refused: askpass exits 1."""
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(None)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        prompt = None
        try:
            line = await reader.readline()
            question = json.loads(line)
            prompt = Prompt(
                secrets.token_hex(8),
                str(question["text"]),
                shows_answer(str(question["text"]), str(question.get("hint", ""))),
            )
        except (ValueError, KeyError, TypeError, OSError, asyncio.LimitOverrunError):
            writer.close()
            return
        answer = asyncio.get_running_loop().create_future()
        self.prompt, self._answer = prompt, answer
        self.on_change()
        # ssh may end the question itself (a notice it no longer shows, a grace time
        # over): askpass is then killed, and its socket closes
        gone = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait([answer, gone], return_when=asyncio.FIRST_COMPLETED)
            if answer.done() and answer.result() is not None:
                writer.write(json.dumps({"answer": answer.result()}).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            gone.cancel()
            if self.prompt is prompt:
                self.prompt, self._answer = None, None
                self.on_change()
            writer.close()
