"""People's terminals in the sandbox: a shell on a PTY per terminal, as the sandbox's own user, in
the workspace, with the environment setup scripts get (no bridge token, no OpenCode password).

Bytes travel base64 in ``terminal_*`` bridge messages. At most ``MAX_OPEN`` at once; a terminal
ends when its shell exits or the control plane closes it (the person left), and its process group
is killed then, so nothing it started outlives it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import logging
import os
import pty
import signal
import struct
import termios
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from sandbox.protocol import (
    MAX_TERMINAL_CHUNK,
    TerminalClose,
    TerminalExit,
    TerminalInput,
    TerminalOpen,
    TerminalOutput,
    TerminalResize,
)

log = logging.getLogger(__name__)

MAX_OPEN = 4
MAX_PENDING = 1024 * 1024  # input the shell has not read yet (a big paste into a busy program)


@dataclass
class _Terminal:
    master: int
    process: asyncio.subprocess.Process
    pending: bytearray = field(default_factory=bytearray)  # input waiting for the PTY to take it


class Terminals:
    def __init__(self, *, send: Callable[[BaseModel], None], cwd: Path, env: Mapping[str, str]) -> None:
        self._send = send
        self._cwd = cwd
        self._env = {**env, "TERM": "xterm-256color"}
        self._open: dict[str, _Terminal] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self, command: TerminalOpen) -> None:
        tid = command.terminal_id
        if tid in self._open:
            return
        if len(self._open) >= MAX_OPEN:
            self._send(TerminalExit(terminal_id=tid, reason=f"at most {MAX_OPEN} terminals at once"))
            return
        master, child = pty.openpty()
        _set_size(master, command.cols, command.rows)
        try:
            process = await asyncio.create_subprocess_exec(
                "bash",
                "-i",
                stdin=child,
                stdout=child,
                stderr=child,
                cwd=self._cwd if self._cwd.exists() else None,
                env=self._env,
                start_new_session=True,  # its own process group: closing it ends what it started
            )
        except OSError as exc:
            os.close(master)
            self._send(TerminalExit(terminal_id=tid, reason=f"could not start a shell: {exc}"))
            return
        finally:
            os.close(child)
        os.set_blocking(master, False)
        self._open[tid] = _Terminal(master, process)
        asyncio.get_running_loop().add_reader(master, self._readable, tid)
        task = asyncio.get_running_loop().create_task(self._wait(tid, process))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _readable(self, tid: str) -> None:
        terminal = self._open.get(tid)
        if terminal is None:
            return
        try:
            data = os.read(terminal.master, MAX_TERMINAL_CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: the shell's side closed
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(terminal.master)
            return
        self._send(TerminalOutput(terminal_id=tid, data=base64.b64encode(data).decode()))

    async def _wait(self, tid: str, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        terminal = self._open.get(tid)
        if terminal is not None and terminal.process is process:
            self._forget(tid)
            self._send(TerminalExit(terminal_id=tid, code=code))

    def input(self, command: TerminalInput) -> None:
        terminal = self._open.get(command.terminal_id)
        if terminal is None:
            return
        try:
            data = base64.b64decode(command.data, validate=True)
        except ValueError:
            return
        if len(terminal.pending) + len(data) > MAX_PENDING:
            return  # the shell is not reading: what is past the bound is dropped, not held
        terminal.pending += data
        self._flush(command.terminal_id)

    def _flush(self, tid: str) -> None:
        """Write what the PTY takes now (its master is non-blocking: a full buffer never stalls the
        runtime's loop); the rest when it is writable again."""
        terminal = self._open.get(tid)
        if terminal is None:
            return
        loop = asyncio.get_running_loop()
        try:
            written = os.write(terminal.master, terminal.pending) if terminal.pending else 0
        except BlockingIOError:
            written = 0
        except OSError:  # the shell's side closed
            terminal.pending.clear()
            written = 0
        del terminal.pending[:written]
        if terminal.pending:
            loop.add_writer(terminal.master, self._flush, tid)
        else:
            loop.remove_writer(terminal.master)

    def resize(self, command: TerminalResize) -> None:
        terminal = self._open.get(command.terminal_id)
        if terminal is not None:
            _set_size(terminal.master, command.cols, command.rows)

    def close(self, command: TerminalClose) -> None:
        terminal = self._open.get(command.terminal_id)
        if terminal is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(terminal.process.pid, signal.SIGKILL)
        self._forget(command.terminal_id)

    def close_all(self) -> None:
        for tid in list(self._open):
            self.close(TerminalClose(terminal_id=tid))

    def _forget(self, tid: str) -> None:
        terminal = self._open.pop(tid, None)
        if terminal is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(terminal.master)
        loop.remove_writer(terminal.master)
        with contextlib.suppress(OSError):
            os.close(terminal.master)


def _set_size(fd: int, cols: int, rows: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
