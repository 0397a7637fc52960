from __future__ import annotations

from inspect_app.control.event_data import Person
from inspect_app.control.terminals import Terminal, Terminals, _lines
from sandbox.protocol import TerminalOutput


def test_what_is_typed_is_recorded_a_line_at_a_time_as_it_reads() -> None:
    t = Terminal("t1", "s1", Person(name="Ada"))
    assert _lines(t, "git sta") == [] and t.line == "git sta"
    assert _lines(t, "tusxy\x7f\x7f\r") == ["git status"]  # backspace edits the line
    assert _lines(t, "ls\x1b[A\x1b[D -la\r") == ["ls -la"]  # arrow keys are not part of it
    assert _lines(t, "rm -rf /\x03") == [] and t.line == ""  # Ctrl-C abandons it
    assert _lines(t, "\r\r  \r") == []  # empty lines are not recorded
    assert _lines(t, "x" * 900 + "\r") == ["x" * 500]  # bounded


async def test_a_sandbox_cannot_write_into_another_sessions_terminal() -> None:
    """Bridge messages are the attacker's: output naming a terminal of another session is dropped."""
    sent: list[object] = []

    async def send(_session: str, message: object) -> bool:
        sent.append(message)
        return True

    async def nothing(*_args: object) -> None:
        return None

    relay = Terminals(send=send, emit=nothing, touch=nothing)
    mine = await relay.open("session-a", Person(id=1, name="Ada"), cols=80, rows=24)
    relay.deliver("session-b", TerminalOutput(terminal_id=mine.terminal_id, data="ZXZpbA=="))  # from b's sandbox
    assert mine.outbox.empty()
    relay.deliver("session-a", TerminalOutput(terminal_id=mine.terminal_id, data="b2s="))
    assert mine.outbox.get_nowait().data == "b2s="
    assert relay.reattach(mine.terminal_id, "session-a", Person(id=2, name="Mallory")) is None  # not hers
