"""Stored events read as typed data, the same for the session page, Slack and API clients."""

from __future__ import annotations

from inspect_app.control.event_data import (
    CompleteData,
    EventData,
    Person,
    PromptData,
    TextData,
    ToolCallData,
    data_of,
)


def test_each_type_reads_as_its_model_and_writes_back_the_same_shape() -> None:
    written = CompleteData(success=False, error="boom", author=Person(id=3, name="Ada")).stored()
    assert written == {"success": False, "error": "boom", "author": {"id": 3, "name": "Ada"}}
    read = data_of({"type": "execution_complete", "seq": 9, "data": written})
    assert isinstance(read, CompleteData) and read.error == "boom" and read.author == Person(id=3, name="Ada")
    assert isinstance(data_of({"type": "token", "data": {"text": "hi"}}), TextData)
    call = data_of({"type": "tool_call", "data": {"call_id": "c1", "tool": "bash", "args": {"command": "ls"}}})
    assert isinstance(call, ToolCallData) and call.args == {"command": "ls"} and call.status == ""


def test_old_and_new_rows_read_leniently_and_a_broken_one_reads_as_nothing() -> None:
    older = data_of({"type": "prompt", "data": {"content": "fix it"}})  # no author, source or position
    assert isinstance(older, PromptData) and older.content == "fix it" and older.author is None
    newer = data_of({"type": "prompt", "data": {"content": "x", "a_field_from_the_future": 1}})
    assert isinstance(newer, PromptData) and not hasattr(newer, "a_field_from_the_future")
    broken = data_of({"type": "prompt", "seq": 4, "data": {"content": ["not", "text"]}})
    assert type(broken) is EventData  # the page shows nothing for it rather than failing
    assert type(data_of({"type": "a_future_kind", "data": {"x": 1}})) is EventData
    assert type(data_of({"type": "text", "data": None})) is TextData


def test_a_row_holds_what_its_writer_gave_and_nothing_empty() -> None:
    from inspect_app.control.event_data import SandboxStatusData

    assert SandboxStatusData(status="stopped", reason="idle").stored() == {"status": "stopped", "reason": "idle"}
    prompt = PromptData(content="x", author=None)
    assert prompt.stored() == {"content": "x"}
    prompt.has_context = True
    assert prompt.stored() == {"content": "x", "has_context": True}
