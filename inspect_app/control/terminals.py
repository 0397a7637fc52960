"""People's terminals in a session's sandbox, relayed by the replica that serves the sandbox.

A terminal is a shell on a PTY inside the sandbox (``sandbox/runtime/terminals.py``), as the
sandbox's user. Here: the open terminals of this replica, what their sandboxes send them, and the
record of them in the session's timeline — who opened one, and each line run (typed input is
gathered up to Enter; what a full-screen program is typed is kept to its printable part). Typing
counts as activity for the idle timeout, and a session with an open terminal is not put to sleep.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from inspect_app.control.event_data import EventData, Person, TerminalData
from inspect_app.errors import Conflict
from sandbox.protocol import (
    MAX_TERMINAL_CHUNK,
    TerminalClose,
    TerminalExit,
    TerminalInput,
    TerminalOpen,
    TerminalOutput,
    TerminalResize,
)

MAX_LINE = 500  # of a recorded line
REATTACH_S = 60.0  # a terminal whose page went away (a reload) waits this long to be taken up again
OUTBOX = 512  # frames waiting for a slow browser; past that the terminal is closed
TOUCH_EVERY_S = 30.0  # how often typing counts as activity (a database write)


@dataclass
class Terminal:
    terminal_id: str
    session_id: str
    by: Person
    outbox: asyncio.Queue[TerminalOutput | TerminalExit] = field(default_factory=lambda: asyncio.Queue(OUTBOX))
    line: str = ""
    closing: asyncio.Task[None] | None = None  # its page went away: it closes unless taken up again
    escape: bool = False  # inside an escape sequence (arrow keys, ...): not part of the line
    touched: float = 0.0


class Terminals:
    def __init__(
        self,
        *,
        send: Callable[[str, BaseModel], Awaitable[bool]],
        emit: Callable[[str, str, EventData], Awaitable[None]],
        touch: Callable[[str], Awaitable[None]],
    ) -> None:
        self._send = send  # to a session's sandbox
        self._emit = emit  # to a session's timeline
        self._touch = touch  # a session was active
        self._open: dict[str, Terminal] = {}

    def open_in(self, session_id: str) -> bool:
        return any(t.session_id == session_id for t in self._open.values())

    async def open(self, session_id: str, by: Person, *, cols: int, rows: int) -> Terminal:
        terminal = Terminal(secrets.token_hex(8), session_id, by)
        self._open[terminal.terminal_id] = terminal
        if not await self._send(session_id, TerminalOpen(terminal_id=terminal.terminal_id, cols=cols, rows=rows)):
            self._open.pop(terminal.terminal_id, None)
            raise Conflict("the sandbox is not connected; try again in a moment", code="sandbox_not_ready")
        await self._emit(session_id, "terminal", TerminalData(by=by, action="opened"))
        return terminal

    async def input(self, terminal: Terminal, data: bytes) -> None:
        for start in range(0, len(data), MAX_TERMINAL_CHUNK // 2):
            chunk = base64.b64encode(data[start : start + MAX_TERMINAL_CHUNK // 2]).decode()
            await self._send(terminal.session_id, TerminalInput(terminal_id=terminal.terminal_id, data=chunk))
        for line in _lines(terminal, data.decode(errors="replace")):
            await self._emit(terminal.session_id, "terminal", TerminalData(by=terminal.by, action="ran", text=line))
        now = time.monotonic()
        if now - terminal.touched > TOUCH_EVERY_S:
            terminal.touched = now
            await self._touch(terminal.session_id)

    async def resize(self, terminal: Terminal, cols: int, rows: int) -> None:
        await self._send(terminal.session_id, TerminalResize(terminal_id=terminal.terminal_id, cols=cols, rows=rows))

    def reattach(self, terminal_id: str, session_id: str, by: Person) -> Terminal | None:
        """The person's own terminal of this session that lost its page (a reload), taken up again."""
        terminal = self._open.get(terminal_id)
        if terminal is None or terminal.session_id != session_id or terminal.by.id != by.id or terminal.closing is None:
            return None
        terminal.closing.cancel()
        terminal.closing = None
        return terminal

    def detach(self, terminal: Terminal) -> None:
        """Its page went away: close it unless the page comes back within ``REATTACH_S``."""
        if terminal.terminal_id not in self._open or terminal.closing is not None:
            return

        async def close_later() -> None:
            await asyncio.sleep(REATTACH_S)
            terminal.closing = None
            await self.close(terminal)

        terminal.closing = asyncio.get_running_loop().create_task(close_later())

    async def close(self, terminal: Terminal) -> None:
        if self._open.pop(terminal.terminal_id, None) is not None:
            await self._send(terminal.session_id, TerminalClose(terminal_id=terminal.terminal_id))

    def deliver(self, session_id: str, message: TerminalOutput | TerminalExit) -> None:
        """What a sandbox sent a terminal (ignored unless it is that sandbox's own terminal)."""
        terminal = self._open.get(message.terminal_id)
        if terminal is None or terminal.session_id != session_id:
            return
        try:
            terminal.outbox.put_nowait(message)
        except asyncio.QueueFull:  # the browser stopped reading: end it rather than hold it all
            self._open.pop(terminal.terminal_id, None)
            terminal.outbox.get_nowait()
            terminal.outbox.put_nowait(TerminalExit(terminal_id=terminal.terminal_id, reason="the browser fell behind"))


def _lines(terminal: Terminal, text: str) -> list[str]:
    """The lines ended by this input (Enter), from what was typed since the last one."""
    done = []
    for char in text:
        if terminal.escape:
            terminal.escape = not (char.isalpha() or char == "~")  # a sequence ends with a letter or ~
            continue
        if char == "\x1b":
            terminal.escape = True
        elif char in "\r\n":
            if terminal.line.strip():
                done.append(terminal.line.strip()[:MAX_LINE])
            terminal.line = ""
        elif char in "\x7f\b":
            terminal.line = terminal.line[:-1]
        elif char == "\x03":  # Ctrl-C: the line is abandoned
            terminal.line = ""
        elif char.isprintable() and len(terminal.line) < MAX_LINE:
            terminal.line += char
    return done
