"""Turn stored and live session events into timeline items (pure: no Reflex, no database)."""

from __future__ import annotations

import dataclasses
from typing import Any

from inspect_app.control.events import tool_detail

MAX_OUTPUT = 4000


@dataclasses.dataclass
class TimelineItem:
    key: str  # stable identity: one item per prompt, answer, tool call or notice
    kind: str  # prompt | answer | tool | notice | error | done
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


def _author(event: dict[str, Any]) -> str:
    author = event.get("data", {}).get("author") or {}
    return str(author.get("name") or "")


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
    kind, data, seq = event.get("type"), event.get("data") or {}, int(event.get("seq") or 0)
    mid = event.get("message_id") or ""
    name = _author(event)
    if kind == "prompt":
        element = (data.get("context") or {}).get("element") or {}
        return TimelineItem(
            key=f"prompt:{mid}",
            kind="prompt",
            seq=seq,
            author=name,
            initial=name[:1].upper(),
            text=str(data.get("content", "")),
            detail=element_label(element) if element else "",  # a page element picked with the extension
        )
    if kind == "text":
        return TimelineItem(key=f"answer:{mid}", kind="answer", seq=seq, text=str(data.get("text", "")))
    if kind == "tool_call":
        tool = str(data.get("tool", ""))
        status = str(data.get("status", ""))
        color = {"completed": "green", "error": "red", "running": "blue"}.get(status, "gray")
        return TimelineItem(
            key=f"tool:{data.get('call_id')}",
            kind="tool",
            seq=seq,
            tool=tool,
            status=status,
            detail=tool_detail(data.get("args") or {}),
            output=str(data.get("output", ""))[:MAX_OUTPUT],
            color=color,
        )
    if kind == "execution_complete":
        ok = bool(data.get("success"))
        text = "Done" if ok else f"Failed: {data.get('error') or 'unknown error'}"
        return TimelineItem(key=f"done:{mid}", kind="done", seq=seq, text=text, color="green" if ok else "red")
    if kind == "error":
        return TimelineItem(key=f"error:{seq}", kind="error", seq=seq, text=str(data.get("message", "")), color="red")
    if kind == "warning":
        return TimelineItem(
            key=f"warning:{seq}",
            kind="notice",
            seq=seq,
            text=str(data.get("message", "")),
            detail=str(data.get("detail", ""))[:MAX_OUTPUT],
            color="amber",
        )
    if kind == "artifact":
        label = {"pr": "Pull request", "branch": "Branch"}.get(str(data.get("kind")), "Artifact")
        state = f" ({data['state']})" if data.get("state") else ""
        where = data.get("url") or data.get("meta", {}).get("branch", "")  # a local branch has no URL
        return TimelineItem(
            key=f"artifact:{seq}", kind="notice", seq=seq, text=f"{label}{state}: {where}", color="violet"
        )
    if kind == "prompt_cancelled":
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
