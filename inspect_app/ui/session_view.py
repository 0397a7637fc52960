"""What a session page's header, boot panel and details show, and how each event changes it: a
pure reducer (no Reflex, no database), beside ``timeline.py`` (which turns events into the
timeline's items). ``SessionPageState`` holds these fields and sets only those a batch changed.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from inspect_app.control.event_data import (
    ArtifactData,
    BootProgressData,
    EventData,
    GitSyncData,
    SandboxStatusData,
    TitleData,
    data_of,
)
from inspect_app.ui.formatting import http_url

# the events this reducer reads (the timeline reads its own)
VIEW_TYPES = frozenset({"artifact", "sandbox_status", "git_sync", "boot_progress", "session_title", "session_cost"})


@dataclasses.dataclass(frozen=True)
class SessionView:
    session_id: str = ""
    branch: str = ""  # the base branch (what a pushed branch is named when the event names none)
    title: str = ""
    status: str = ""
    status_reason: str = ""
    boot: str = ""  # the boot panel's live line ("" when no boot is under way)
    boot_steps: tuple[str, ...] = ()  # "Git sync: done (20 ms)", … while the sandbox boots
    boot_done: str = ""  # the last boot, once ready: "Git sync: done (20 ms) · … · Ready (image)"
    previews: tuple[tuple[str, str], ...] = ()  # (label, href): the ports its sandbox serves
    pr_url: str = ""
    pr_state: str = ""
    branch_pushed: str = ""
    branch_url: str = ""
    cost: str = ""  # "$0.42", "" while nothing priced was spent


# the fields that change as events come (the state sets these)
CHANGING = tuple(f.name for f in dataclasses.fields(SessionView) if f.name not in ("session_id", "branch"))


def reduce(view: SessionView, event: dict[str, Any]) -> SessionView:
    """The view after one stored or live event (unchanged for events it does not read)."""
    kind = event.get("type")
    if kind == "session_cost":
        return dataclasses.replace(view, cost=cost_shown(event.get("data") or {}))
    if kind == "prompt_started":
        return dataclasses.replace(view, status="running")
    if kind == "execution_complete":  # its sandbox waits for the next prompt
        return dataclasses.replace(view, status="ready")
    if kind not in VIEW_TYPES:
        return view
    return _news(view, data_of(event))


def _news(view: SessionView, news: EventData) -> SessionView:
    change = dataclasses.replace
    timing = f" ({news.elapsed_ms} ms)" if getattr(news, "elapsed_ms", 0) else ""
    match news:
        case ArtifactData(kind="pr"):
            return change(view, pr_url=http_url(news.url), pr_state=news.state)
        case ArtifactData(kind="branch"):
            pushed = str(news.meta.get("branch", "")) or view.branch
            return change(view, branch_pushed=pushed, branch_url=http_url(news.url))
        case TitleData() if view.title in ("", "Untitled session"):
            return change(view, title=news.title or view.title)
        case SandboxStatusData():
            status = news.status or view.status
            # the boot panel follows a sandbox on its way up (and keeps a failed boot's steps)
            view = change(
                view,
                status=status,
                status_reason=news.reason,
                boot="" if status in ("ready", "stopped") else f"Sandbox {status}",
            )
            if status == "spawning":
                return change(view, boot_steps=(f"Sandbox starting ({news.boot_mode or 'fresh'})",))
            if status == "ready":
                steps = [step for step in view.boot_steps if " output: " not in step]
                return change(
                    view,
                    boot_steps=(),
                    boot_done=" · ".join([*steps, f"Ready ({news.boot_mode or 'fresh'})"]),
                    previews=preview_links(view.session_id, [p.model_dump() for p in news.previews]),
                )
            return view
        case GitSyncData(status="running"):
            return change(view, boot=f"Syncing the repository ({news.elapsed_ms // 1000}s)")
        case GitSyncData():
            return change(
                view,
                boot=f"Syncing the repository ({news.status})",
                boot_steps=(*view.boot_steps, f"Git sync: {news.status}{timing}"),
            )
        case BootProgressData(status="running"):
            # the step's latest output line, live: it replaces the step's previous one
            stage = news.stage.capitalize()
            steps = [step for step in view.boot_steps if not step.startswith(f"{stage} output: ")]
            return change(
                view, boot=f"{stage}: {news.detail}"[:200], boot_steps=(*steps, f"{stage} output: {news.detail}"[:200])
            )
        case BootProgressData():
            line = f"{news.stage.capitalize()}: {news.status}"
            return change(view, boot=line, boot_steps=(*view.boot_steps, f"{line}{timing}"))
    return view


def boot_timings(newest_first: list[dict[str, Any]]) -> list[str]:
    """The last boot of the session's sandbox, a line per step with how long it took (from its
    ``sandbox_status``, ``git_sync`` and ``boot_progress`` events, newest first)."""
    lines: list[str] = []
    for event in newest_first:
        data = event.get("data") or {}
        kind, status, ms = event.get("type"), str(data.get("status", "")), int(data.get("elapsed_ms") or 0)
        timing = f" in {ms / 1000:.1f} s" if ms else ""
        if kind == "sandbox_status" and status == "spawning":
            lines.append(f"Started ({data.get('boot_mode') or 'fresh'})")
            break
        if kind == "sandbox_status" and status == "ready" and not lines:
            lines.append(f"Ready ({data.get('boot_mode') or 'fresh'})")
        elif kind == "git_sync" and status in ("done", "failed"):
            lines.append(f"Git sync {status}{timing}")
        elif kind == "boot_progress" and status in ("done", "failed", "skipped"):
            lines.append(f"{str(data.get('stage', '')).capitalize()} {status}{timing}")
    return lines[::-1]


def preview_links(session_id: str, previews: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """The links into its previews (through the app, which hands out the pass)."""
    base = f"/api/sessions/{session_id}/previews"
    return tuple(
        (str(p.get("label") or f"port {p['port']}"), f"{base}/{p['port']}")
        for p in previews
        if isinstance(p.get("port"), int)
    )


def cost_shown(cost: dict[str, Any]) -> str:
    """The header's cost: "$0.42", or "" while nothing priced was spent."""
    try:
        spent = Decimal(str(cost.get("dollars") or "0"))
    except ArithmeticError:
        return ""
    return str(cost.get("display") or "") if spent > 0 else ""
