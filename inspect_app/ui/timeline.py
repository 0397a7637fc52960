"""Turn stored and live session events into timeline items (pure: no Reflex, no database)."""

from __future__ import annotations

import dataclasses
from typing import Any

from inspect_app.control.event_data import (
    ArtifactData,
    ByData,
    ChildData,
    CompleteData,
    ErrorData,
    PromptData,
    TerminalData,
    TextData,
    ToolCallData,
    WarningData,
    author_name,
    data_of,
)
from inspect_app.control.events import tool_detail
from inspect_app.control.media import content_type_of
from inspect_app.ui.formatting import http_url
from inspect_app.ui.routes import session_url

MAX_OUTPUT = 4000


@dataclasses.dataclass
class TimelineItem:
    key: str  # stable identity: one item per prompt, answer, tool call or notice
    kind: str  # prompt | answer | tool | notice | error | done | child | screenshot
    seq: int = 0
    message_id: str = ""  # the prompt this item belongs to
    author: str = ""
    initial: str = ""
    text: str = ""
    tool: str = ""
    detail: str = ""
    status: str = ""
    output: str = ""
    color: str = "gray"
    link: str = ""  # where the item leads (a child session's page)


def element_label(element: dict[str, Any]) -> str:
    """A picked element in one line: its selector and its innermost React components."""
    names = [str(c.get("name", "")) for c in (element.get("react") or {}).get("components", [])][:4]
    return str(element.get("selector", "")) + (f" · {' / '.join(names)}" if names else "")


def item_for(event: dict[str, Any]) -> TimelineItem | None:
    """The timeline item an event shows as, or None for events the timeline does not show."""
    item = _item_for(event)
    if item is not None:
        item.message_id = str(event.get("message_id") or "")
    return item


def _item_for(event: dict[str, Any]) -> TimelineItem | None:
    kind, seq, mid = event.get("type"), int(event.get("seq") or 0), event.get("message_id") or ""
    match data_of(event):
        case PromptData() as prompt:
            name = author_name(prompt)
            element = (prompt.context or {}).get("element") or {}
            return TimelineItem(
                key=f"prompt:{mid}",
                kind="prompt",
                seq=seq,
                author=name,
                initial=name[:1].upper(),
                text=prompt.content,
                detail=element_label(element) if element else "",  # a page element picked with the extension
                status="plan" if prompt.mode == "plan" else "",
            )
        case TextData() as answer if kind == "text":
            return TimelineItem(key=f"answer:{mid}", kind="answer", seq=seq, text=answer.text)
        case ToolCallData() as call:
            return TimelineItem(
                key=f"tool:{call.call_id}",
                kind="tool",
                seq=seq,
                tool=call.tool,
                status=call.status,
                detail=tool_detail(call.args),
                output=call.output[:MAX_OUTPUT],
                color={"completed": "green", "error": "red", "running": "blue"}.get(call.status, "gray"),
            )
        case CompleteData() as end:
            text = "Done" if end.success else f"Failed: {end.error or 'unknown error'}"
            return TimelineItem(
                key=f"done:{mid}", kind="done", seq=seq, text=text, color="green" if end.success else "red"
            )
        case ErrorData() as error:
            return TimelineItem(key=f"error:{seq}", kind="error", seq=seq, text=error.message, color="red")
        case WarningData() as warning:
            return TimelineItem(
                key=f"warning:{seq}",
                kind="notice",
                seq=seq,
                text=warning.message,
                detail=warning.detail[:MAX_OUTPUT],
                color="amber",
            )
        case ArtifactData(kind="screenshot") as shot:
            key = str(shot.meta.get("key", ""))
            if content_type_of(key) is None:  # not one of ours (a sandbox may announce anything)
                return None
            return TimelineItem(
                key=f"screenshot:{key}",
                kind="screenshot",
                seq=seq,
                text=str(shot.meta.get("caption") or "Screenshot"),
                detail=str(shot.meta.get("page") or ""),
                link=f"/media/{key}",  # this server's own copy, whatever URL the event names
            )
        case ArtifactData() as artifact:
            label = {"pr": "Pull request", "branch": "Branch"}.get(artifact.kind, "Artifact")
            state = f" ({artifact.state})" if artifact.state else ""
            where = artifact.url or str(artifact.meta.get("branch", ""))  # a local branch has no URL
            return TimelineItem(
                key=f"artifact:{seq}", kind="notice", seq=seq, text=f"{label}{state}: {where}", color="violet"
            )
        case ChildData() as child:  # one card per child, updated in place as it works
            return TimelineItem(
                key=f"child:{child.child_id}",
                kind="child",
                seq=seq,
                text=child.title or "Untitled session",
                detail=child.repository,
                status=child.status,
                output=http_url(child.pr_url),  # agent-written: only an http(s) link is followed
                link=session_url(child.child_id),
                color={"done": "green", "failed": "red", "stopped": "gray"}.get(child.status, "blue"),
            )
        case TerminalData() as used:
            name = used.by.name if used.by is not None else "Someone"
            opened = used.action == "opened"
            said = f"{name} opened a terminal" if opened else f"{name} ran in the terminal: {used.text}"
            return TimelineItem(key=f"terminal:{seq}", kind="notice", seq=seq, text=said, color="gray")
        case ByData() if kind == "prompt_cancelled":
            return TimelineItem(key=f"cancel:{mid}", kind="notice", seq=seq, text="Prompt cancelled", color="gray")
    return None


def settle(done: str, tail: str) -> tuple[str, str]:
    """Move finished paragraphs of a streaming answer from ``tail`` to ``done``.

    The UI re-sends a changed var whole; keeping the growing answer in a rarely-changing ``done``
    and a short ``tail`` makes each streamed update about the size of the current paragraph. A cut
    never falls inside an open code fence (it would render as two broken blocks)."""
    cut = tail.rfind("\n\n")
    while cut >= 0:
        candidate = done + tail[: cut + 2]
        if candidate.count("```") % 2 == 0:
            return candidate, tail[cut + 2 :]
        cut = tail.rfind("\n\n", 0, cut)  # that cut is inside a code block: try an earlier one
    return done, tail


def merge(items: list[TimelineItem], events: list[dict[str, Any]]) -> list[TimelineItem]:
    """Items with these events applied. The same key replaces (tool calls update in place); a new
    item joins its prompt's group (after the group's last item), so queued prompts' answers read
    under their prompt; items of no prompt append."""
    out = list(items)
    for event in events:
        item = item_for(event)
        if item is None:
            continue
        if item.kind == "answer" and any(
            old.kind == "prompt" and old.status == "plan" and old.message_id == item.message_id for old in out
        ):
            item.status = "plan"  # a plan prompt's answer is a plan: it can be built
        existing = next((i for i, old in enumerate(out) if old.key == item.key), None)
        if existing is not None:
            out[existing] = item
            continue
        group_end = max(
            (i for i, old in enumerate(out) if item.message_id and old.message_id == item.message_id), default=None
        )
        if group_end is None or item.kind == "prompt":
            out.append(item)
        else:
            out.insert(group_end + 1, item)
    return out
