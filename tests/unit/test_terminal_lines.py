from __future__ import annotations

from inspect_app.control.event_data import Person
from inspect_app.control.terminals import Terminal, _lines


def test_what_is_typed_is_recorded_a_line_at_a_time_as_it_reads() -> None:
    t = Terminal("t1", "s1", Person(name="Ada"))
    assert _lines(t, "git sta") == [] and t.line == "git sta"
    assert _lines(t, "tusxy\x7f\x7f\r") == ["git status"]  # backspace edits the line
    assert _lines(t, "ls\x1b[A\x1b[D -la\r") == ["ls -la"]  # arrow keys are not part of it
    assert _lines(t, "rm -rf /\x03") == [] and t.line == ""  # Ctrl-C abandons it
    assert _lines(t, "\r\r  \r") == []  # empty lines are not recorded
    assert _lines(t, "x" * 900 + "\r") == ["x" * 500]  # bounded
