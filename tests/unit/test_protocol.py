from __future__ import annotations

import json

import pytest

from sandbox.protocol import (
    MAX_PROMPT_CHARS,
    ExecutionComplete,
    PromptCommand,
    ProtocolError,
    ToolCall,
    encode,
    parse_from_control,
    parse_from_sandbox,
)
from sandbox.runtime.acks import AckBuffer, is_critical


def test_round_trip_both_directions() -> None:
    prompt = PromptCommand(message_id="m1", content="hi", author={"name": "Ada", "email": "ada@example.com"})  # type: ignore[arg-type]
    assert parse_from_control(encode(prompt)) == prompt
    call = ToolCall(message_id="m1", call_id="c1", tool="bash", args={"command": "ls"}, status="running")
    assert parse_from_sandbox(encode(call)) == call


TOO_LONG = {"type": "prompt", "message_id": "m", "author": {"name": "A", "email": "a@b.c"}}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"type": 3}', "JSON object"),
        ('{"type": "launch"}', "bad 'launch' message"),
        ('{"type": "prompt", "message_id": "m"}', "bad 'prompt' message: content"),
        (
            json.dumps(
                {
                    "type": "prompt",
                    "message_id": "m",
                    "content": "x" * (MAX_PROMPT_CHARS + 1),
                    "author": {"name": "A", "email": "a@b.c"},
                }
            ),
            "content",
        ),
    ],
)
def test_malformed_control_messages_are_protocol_errors(raw: str, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        parse_from_control(raw)


def test_sandbox_side_rejects_control_types() -> None:
    with pytest.raises(ProtocolError):
        parse_from_sandbox('{"type": "prompt", "message_id": "m", "content": "x"}')


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    message = parse_from_sandbox('{"type": "heartbeat", "busy": true, "future_field": 1}')
    assert message.type == "heartbeat" and message.busy is True


def test_ack_buffer_keeps_critical_messages_until_acknowledged() -> None:
    buffer = AckBuffer(limit=3)
    first = buffer.record(ExecutionComplete(message_id="m1", success=True))
    second = buffer.record(ExecutionComplete(message_id="m2", success=False, error="x"))
    assert first.ack_id and second.ack_id and first.ack_id != second.ack_id
    assert [m.message_id for m in buffer.pending()] == ["m1", "m2"]
    assert buffer.ack(first.ack_id) and not buffer.ack(first.ack_id)
    assert [m.message_id for m in buffer.pending()] == ["m2"]
    for i in range(5):
        buffer.record(ExecutionComplete(message_id=f"x{i}", success=True))
    assert len(buffer) == 3  # bounded


def test_which_messages_are_critical() -> None:
    assert is_critical(ExecutionComplete(message_id="m", success=True))
    assert not is_critical(ToolCall(message_id="m", call_id="c", tool="t", status="pending"))
    assert not is_critical(parse_from_sandbox('{"type": "error", "code": "bad_message", "message": "x"}'))
    assert is_critical(parse_from_sandbox('{"type": "error", "code": "start_failed", "message": "x"}'))
