"""The OpenCode → protocol translation, fed a stream recorded from the real OpenCode 1.18.33."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.protocol import ExecutionComplete, SessionTitle, StepFinish, Token, ToolCall
from sandbox.runtime.translate import PromptTranslator

RECORDED = Path(__file__).with_name("fixtures") / "opencode_write_then_answer.jsonl"
SESSION = "ses_dcec4f9d8ffefnH7rIj77atf6L"
USER_MESSAGE = "msg_2313b07ce001XshLskp9ki6Y1m"


def recorded() -> list[dict]:
    return [json.loads(line) for line in RECORDED.read_text().splitlines()]


def run(events: list[dict], translator: PromptTranslator) -> list:
    out = []
    for i, event in enumerate(events):
        out += translator.feed(event, now=i * 0.001)
    return out


def test_recorded_stream_becomes_ordered_protocol_messages() -> None:
    t = PromptTranslator(message_id="m1", agent_session_id=SESSION, user_message_id=USER_MESSAGE)
    out = run(recorded(), t)
    kinds = [m.type for m in out]
    assert kinds == [
        "session_title",
        "tool_call",
        "tool_call",
        "tool_call",
        "step_finish",
        "token",
        "step_finish",
        "execution_complete",
    ]
    assert isinstance(out[0], SessionTitle) and out[0].title == "Scripted session"
    tools = [m for m in out if isinstance(m, ToolCall)]
    assert [m.status for m in tools] == ["pending", "running", "completed"]
    assert tools[2].args["filePath"].endswith("hello.txt") and tools[2].output == "Wrote file successfully."
    tokens = [m for m in out if isinstance(m, Token)]
    assert "".join(m.text for m in tokens) == "I wrote hello.txt for you. All done."
    assert isinstance(out[4], StepFinish) and out[4].tokens["total"] == 120
    assert out[-1] == ExecutionComplete(message_id="m1", success=True)
    assert t.complete
    assert t.feed(recorded()[-1], 1.0) == []  # nothing after completion


def test_user_text_and_other_sessions_are_ignored() -> None:
    t = PromptTranslator(message_id="m1", agent_session_id="ses_other")
    assert run(recorded(), t) == []
    echo = next(
        e for e in recorded() if e["type"] == "message.part.updated" and e["properties"]["part"]["type"] == "text"
    )
    t2 = PromptTranslator(message_id="m1", agent_session_id=SESSION, user_message_id=USER_MESSAGE)
    assert t2.feed(echo, 0) == []  # the prompt's own text is not an answer


def test_answers_to_another_prompt_are_ignored() -> None:
    t = PromptTranslator(message_id="m2", agent_session_id=SESSION, user_message_id="msg_someone_else")
    out = run(recorded(), t)
    assert [m.type for m in out] == ["session_title", "execution_complete"]


def _delta(text: str, part: str = "p1") -> dict:
    return {
        "type": "message.part.delta",
        "properties": {"sessionID": "s", "messageID": "a1", "partID": part, "field": "text", "delta": text},
    }


def _started() -> PromptTranslator:
    t = PromptTranslator(message_id="m", agent_session_id="s", user_message_id="u1", flush_chars=10, flush_after_s=0.05)
    t.feed({"type": "session.status", "properties": {"sessionID": "s", "status": {"type": "busy"}}}, 0)
    t.feed(
        {
            "type": "message.updated",
            "properties": {
                "sessionID": "s",
                "info": {"id": "a1", "role": "assistant", "sessionID": "s", "parentID": "u1"},
            },
        },
        0,
    )
    return t


def test_tokens_are_coalesced_by_size_and_age() -> None:
    t = _started()
    assert t.feed(_delta("abc"), 0.0) == []
    assert not t.due(0.01) and t.due(0.06)
    assert t.feed(_delta("defghij"), 0.02) == [Token(message_id="m", text="abcdefghij")]  # reached 10 chars
    assert t.feed(_delta("k"), 0.03) == []
    assert t.flush() == [Token(message_id="m", text="k")]
    assert t.flush() == []


def test_final_text_part_adds_only_what_deltas_missed() -> None:
    t = _started()
    t.feed(_delta("Hello"), 0)
    final = {
        "type": "message.part.updated",
        "properties": {
            "sessionID": "s",
            "part": {"id": "p1", "messageID": "a1", "type": "text", "text": "Hello world"},
        },
    }
    out = t.feed(final, 0.01) + t.flush()
    assert "".join(m.text for m in out) == "Hello world"


def test_abort_and_late_events() -> None:
    t = _started()
    t.stop_requested = True
    error = {"type": "session.error", "properties": {"sessionID": "s", "error": {"name": "MessageAbortedError"}}}
    assert t.feed(error, 0) == []
    out = t.feed({"type": "session.idle", "properties": {"sessionID": "s"}}, 0)
    assert out == [ExecutionComplete(message_id="m", success=False, error="stopped by a participant")]
    # a late error of that aborted prompt does not fail the next one before it is busy
    nxt = PromptTranslator(message_id="m2", agent_session_id="s", user_message_id="u2")
    assert nxt.feed(error, 1) == [] and nxt.error is None


def test_idle_before_busy_does_not_complete() -> None:
    t = PromptTranslator(message_id="m", agent_session_id="s")
    assert t.feed({"type": "session.idle", "properties": {"sessionID": "s"}}, 0) == []
    assert not t.complete


def test_model_errors_fail_the_prompt() -> None:
    t = _started()
    t.feed(
        {
            "type": "session.error",
            "properties": {"sessionID": "s", "error": {"name": "APIError", "data": {"message": "401 invalid key"}}},
        },
        0,
    )
    out = t.feed({"type": "session.status", "properties": {"sessionID": "s", "status": {"type": "idle"}}}, 0)
    assert out == [ExecutionComplete(message_id="m", success=False, error="APIError: 401 invalid key")]
