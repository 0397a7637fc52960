"""What each kind of stored session event holds, typed once (as ``sandbox.protocol`` types the wire).

Stored events are ``{seq, rev, type, data, message_id, created_at}``; ``data`` depends on ``type``.
The session page, the Slack watcher and the WebSocket API's clients read the same shapes: readers
call ``data_of(event)`` and get the model below for its type. Rows written by older versions, or
with fields a newer one added, read leniently (unknown fields are ignored, missing ones default);
a row that cannot be read at all reads as ``EventData`` — shown as nothing rather than breaking the
page. Writers in the control plane build these models, so what is written is what is read.

Kinds and statuses are plain strings here, on purpose: where they come from a sandbox, the wire
models (``sandbox.protocol``) check them as Literals on arrival; a stored row must still read when
a later version adds a kind (a Literal would make the whole event unreadable to an older reader).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inspect_app.models import User

log = logging.getLogger(__name__)


class Person(BaseModel):
    """Who wrote a prompt (on its events) or did something to it: their id and name."""

    model_config = ConfigDict(extra="ignore")
    id: int | None = None
    name: str = ""


def person(user: User) -> Person:
    return Person(id=user.id, name=user.name)


class EventData(BaseModel):
    """What every event's data may carry: the author of the prompt it belongs to."""

    model_config = ConfigDict(extra="ignore")
    author: Person | None = None

    def stored(self) -> dict[str, Any]:
        """As written to the store: the fields its writer gave (none empty), so a row holds what was
        said — a sandbox status without a boot mode has none, rather than an empty one."""
        return self.model_dump(exclude_unset=True, exclude_none=True)


class PromptData(EventData):
    """``prompt``: someone asked (the picked page element, if any, is on the message: ``has_context``)."""

    content: str = ""
    source: str = ""  # web | api | slack | extension
    position: int = 0  # prompts ahead of it when it was queued
    has_context: bool = False
    mode: str = "build"  # plan: the agent plans and changes nothing
    context: dict[str, Any] | None = None  # attached for the session page (prompts.attach_contexts)


class StartedData(EventData):
    """``prompt_started``: the prompt was sent to the sandbox."""


class TextData(EventData):
    """``text`` (the answer so far, one row per prompt) and ``token`` (one live piece of it)."""

    text: str = ""


class ToolCallData(EventData):
    call_id: str = ""
    tool: str = ""
    args: dict[str, Any] = Field(default_factory=dict)
    status: str = ""  # pending | running | completed | error
    output: str = ""


class StepData(EventData):
    """``step_finish``: one model step's token counts and cost."""

    tokens: dict[str, Any] = Field(default_factory=dict)
    cost: float = 0.0


class CompleteData(EventData):
    """``execution_complete``: the prompt's one end."""

    success: bool = False
    error: str | None = None


class ErrorData(EventData):
    code: str = ""
    message: str = ""


class WarningData(EventData):
    message: str = ""
    detail: str = ""


class ArtifactData(EventData):
    """``artifact``: a pull request, a pushed branch, ..."""

    kind: str = ""  # pr | branch | screenshot | preview
    url: str = ""
    state: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)


class PreviewData(BaseModel):
    """A port the sandbox serves a preview on (``.inspect/preview``)."""

    port: int = 0
    label: str = ""


class SandboxStatusData(EventData):
    status: str = ""
    sandbox_id: str = ""  # spawning | ready | stopped | failed | stale | ...
    reason: str = ""
    boot_mode: str = ""
    commit: str = ""
    branch: str = ""
    elapsed_ms: int = 0
    previews: list[PreviewData] = Field(default_factory=list)  # when ready


class GitSyncData(EventData):
    status: str = ""  # started | running | done | failed
    detail: str = ""
    elapsed_ms: int = 0


class BootProgressData(EventData):
    stage: str = ""  # setup | start | agent
    status: str = ""  # started | running | done | skipped | failed
    detail: str = ""
    elapsed_ms: int = 0


class TitleData(EventData):
    title: str = ""


class ByData(EventData):
    """``stop_requested`` and ``prompt_cancelled``: who did it."""

    by: Person | None = None


class PushData(EventData):
    """``push_complete`` / ``push_error``."""

    branch: str = ""
    commit: str = ""
    error: str = ""


class ChildData(EventData):
    """``child``: a session this one's agent started (one row per child, upserted as it changes)."""

    child_id: str = ""
    title: str = ""
    repository: str = ""
    status: str = ""  # working | done | failed | stopped | waiting
    pr_url: str = ""


class CostData(EventData):
    """``session_cost``: what the session's ended prompts cost so far (after each prompt's end)."""

    dollars: str = "0"  # exact decimal
    display: str = ""  # e.g. "$0.42"
    unpriced: bool = False


class TerminalData(EventData):
    """``terminal``: someone opened a terminal in the sandbox, or ran a line in it."""

    by: Person | None = None
    action: str = ""  # opened | ran
    text: str = ""  # the line run


class SnapshotData(EventData):
    commit: str = ""


BY_TYPE: dict[str, type[EventData]] = {
    "prompt": PromptData,
    "prompt_started": StartedData,
    "text": TextData,
    "token": TextData,
    "tool_call": ToolCallData,
    "step_finish": StepData,
    "execution_complete": CompleteData,
    "error": ErrorData,
    "warning": WarningData,
    "artifact": ArtifactData,
    "sandbox_status": SandboxStatusData,
    "git_sync": GitSyncData,
    "boot_progress": BootProgressData,
    "session_title": TitleData,
    "stop_requested": ByData,
    "prompt_cancelled": ByData,
    "push_complete": PushData,
    "push_error": PushData,
    "snapshot_ready": SnapshotData,
    "child": ChildData,
    "session_cost": CostData,
    "terminal": TerminalData,
}


def data_of(event: Mapping[str, Any]) -> EventData:
    """The typed data of a stored or live event (a dict as the store and the hub give it)."""
    model = BY_TYPE.get(str(event.get("type")), EventData)
    raw = event.get("data")
    try:
        return model.model_validate(raw if isinstance(raw, Mapping) else {})
    except ValidationError as exc:
        log.warning("unreadable %s event %s: %s", event.get("type"), event.get("seq"), exc.errors()[0]["msg"])
        return EventData()


def author_name(data: EventData) -> str:
    return data.author.name if data.author is not None else ""
