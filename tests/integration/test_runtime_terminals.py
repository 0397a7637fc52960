"""The runtime's terminals on a real PTY and bash: a paste far larger than the PTY's buffer reaches
the program whole (written as the PTY takes it, never blocking the runtime's loop); output comes
back base64; closing ends the shell's whole process group."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import pytest

from sandbox.protocol import TerminalClose, TerminalInput, TerminalOpen, TerminalOutput
from sandbox.runtime.terminals import Terminals

pytestmark = pytest.mark.timeout(60)


def typed(text: str | bytes) -> TerminalInput:
    data = text.encode() if isinstance(text, str) else text
    return TerminalInput(terminal_id="t1", data=base64.b64encode(data).decode())


async def until_true(check: object, what: str) -> None:
    for _ in range(400):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(what)


async def test_a_big_paste_arrives_whole_and_closing_ends_the_shell(tmp_path: Path) -> None:
    said: list[object] = []
    terminals = Terminals(send=said.append, cwd=tmp_path, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    await terminals.open(TerminalOpen(terminal_id="t1", cols=80, rows=24))
    terminals.input(typed("stty -echo; echo $$ > pid.txt; cat > pasted.txt; wc -c < pasted.txt > count.txt\n"))
    paste = (("x" * 999 + "\n") * 300).encode()  # 300 kB: many times what a PTY buffers
    for start in range(0, len(paste), 30_000):  # as the control plane sends it: bridge-sized pieces
        terminals.input(typed(paste[start : start + 30_000]))
    terminals.input(typed(b"\x04"))  # end of input for cat
    count = tmp_path / "count.txt"
    await until_true(lambda: count.exists() and count.read_text().strip(), "the count")
    assert count.read_text().strip() == str(len(paste))
    output = b"".join(base64.b64decode(m.data) for m in said if isinstance(m, TerminalOutput))
    assert output  # the shell's prompt came back through the bridge messages
    shell = Path("/proc") / (tmp_path / "pid.txt").read_text().strip()
    assert shell.exists()
    terminals.close(TerminalClose(terminal_id="t1"))
    await until_true(lambda: not shell.exists() or "zombie" in _state(shell), "the shell to end")


def _state(proc: Path) -> str:
    try:
        return (proc / "status").read_text().lower()
    except OSError:
        return "zombie"
