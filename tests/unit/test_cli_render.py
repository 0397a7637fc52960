from __future__ import annotations

from inspect_app.cli.render import Line, Transcript


def texts(lines: list[Line]) -> list[str]:
    return [line.text for line in lines]


def test_a_growing_answer_prints_only_what_is_new_and_a_call_once_and_when_it_ends() -> None:
    t = Transcript()
    assert t.lines({"type": "text", "seq": 4, "data": {"text": "Hel"}}) == [Line("Hel", end="")]
    assert t.lines({"type": "text", "seq": 4, "data": {"text": "Hello"}}) == [Line("lo", end="")]
    assert t.lines({"type": "text", "seq": 4, "data": {"text": "Hello"}}) == []  # the same version again
    call = {"call_id": "c1", "tool": "bash", "args": {"command": "ls", "description": "list"}}
    running = t.lines({"type": "tool_call", "seq": 5, "data": {**call, "status": "running"}})
    assert texts(running) == ["", "⚙ bash ls"]  # the answer's line is ended first
    done = t.lines({"type": "tool_call", "seq": 5, "data": {**call, "status": "completed", "output": "a\nb"}})
    assert texts(done) == ["  → completed", "  a", "  b"]
    assert t.lines({"type": "tool_call", "seq": 5, "data": {**call, "status": "running"}}) == []  # stale version


def test_a_call_first_seen_ended_shows_whole_and_a_failure_says_why() -> None:
    t = Transcript()
    ended = {"call_id": "c2", "tool": "read", "args": {"filePath": "x.py"}, "status": "error", "output": "no such file"}
    assert texts(t.lines({"type": "tool_call", "data": ended})) == [
        "⚙ read filePath=x.py",
        "  → error",
        "  no such file",
    ]
    failed = t.lines({"type": "execution_complete", "data": {"success": False, "error": "the model refused"}})
    assert failed == [Line("✗ failed: the model refused", "red")]
