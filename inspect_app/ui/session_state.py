"""The session page's state: history from the database, then the live tail from the hub.

Kept small on purpose: ``items`` changes when a prompt, tool call or completion arrives (not per
token); the streamed answer lives in ``live_done`` (settled paragraphs, rarely re-sent) and
``live_tail`` (the paragraph being written), flushed at most ten times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any

import reflex as rx

from inspect_app import services
from inspect_app.control import presence
from inspect_app.control.changes import files_of
from inspect_app.control.data import changes as changes_data
from inspect_app.control.data import prompts, repositories
from inspect_app.control.data import sessions as sessions_ctl
from inspect_app.control.event_data import (
    TextData,
    data_of,
)
from inspect_app.control.events import session_channel
from inspect_app.control.follow import Follower
from inspect_app.control.plane import CHANGES_KEPT
from inspect_app.errors import InspectError
from inspect_app.ui.formatting import http_url, status_color
from inspect_app.ui.selection import SelectionState
from inspect_app.ui.session_view import CHANGING, SessionView, boot_timings, cost_shown, preview_links, reduce
from inspect_app.ui.state import AppState, connected
from inspect_app.ui.timeline import TimelineItem, merge, settle

log = logging.getLogger(__name__)

HISTORY = 200
FLUSH_INTERVAL_S = 0.1  # at most ten UI updates a second per client
IDLE_CHECK_S = 2.0  # how often a quiet tab checks it is still open (and clears "is typing")
TYPING_SHOWN_S = 4.0
MARK_READ_S = 2.0  # how often an open tab records what its person has seen (the sidebar's unread dot)
TIMELINE_TYPES = {
    "prompt",
    "text",
    "tool_call",
    "execution_complete",
    "error",
    "warning",
    "prompt_cancelled",
    "artifact",
    "child",
    "terminal",
}


@dataclasses.dataclass
class QueueRow:
    id: str
    author: str
    content: str
    status: str


def _load(session_id: str) -> dict[str, Any]:
    plane = services.current().plane
    snapshot = plane.session_snapshot(session_id)
    repo = repositories.get(plane.engine, snapshot["session"]["repository_id"])
    events = prompts.attach_contexts(plane.engine, [e.to_dict() for e in plane.recent_events(session_id, HISTORY)])
    # the changes as kept after the last prompt (a database read); opening Details reads them live
    kept = changes_data.kept(plane.engine, session_id)
    changes = _file_rows(kept) if kept is not None else ([], "Not read yet: open Details to read them.")
    return {"snapshot": snapshot, "repo": repo.name, "events": events, "changes": changes}


def _queue_rows(session_id: str) -> list[QueueRow]:
    return [
        QueueRow(id=q.id, author=q.author_name, content=q.content[:300], status=q.status)
        for q in prompts.queue(services.current().engine, session_id)
    ]


@dataclasses.dataclass
class FileRow:
    path: str
    added: int
    removed: int
    status: str
    patch: str


def _file_rows(diff: str | None) -> tuple[list[FileRow], str]:
    if diff is None:
        return [], "The changes cannot be read right now."
    rows = [FileRow(f.path, f.added, f.removed, f.status, f.patch) for f in files_of(diff)]
    return rows, "" if rows else "No changes yet."


class SessionPageState(AppState):
    session_id: str = ""
    title: str = ""
    repo: str = ""
    branch: str = ""
    status: str = ""
    status_reason: str = ""
    boot: str = ""
    boot_steps: list[str] = []  # "Git sync: done (20 ms)", … while the sandbox boots
    items: list[TimelineItem] = []
    live_done: str = ""
    live_tail: str = ""
    live_message: str = ""
    queue: list[QueueRow] = []
    watchers: list[str] = []
    typing: str = ""
    draft: str = ""
    plan_mode: bool = False  # the next prompt is a plan: the agent looks and changes nothing
    error: str = ""
    not_found: bool = False
    pr_url: str = ""
    pr_state: str = ""
    source: str = ""  # where the session came from: web, api, slack, extension
    source_link: str = ""  # e.g. the Slack thread it was started in
    started_by: str = ""  # e.g. "automation Nightly triage (run #3)"
    fork_ref: str = ""  # refs/pull/N/head when it works on a fork's code (no secrets, no push)
    previews: list[dict[str, str]] = []  # {label, href}: the ports its sandbox serves previews on
    cost: str = ""  # what its ended prompts cost, e.g. "$0.42" ("" before any)
    agent_has: str = ""  # its MCP servers and skills, e.g. "MCP: db · skills: style"
    branch_pushed: str = ""  # the session branch, once pushed without a pull request
    branch_url: str = ""  # where a pull request can be opened by hand (GitHub compare), if anywhere
    model: str = ""
    work_branch: str = ""  # the branch the agent works on (``branch`` is its base)
    files: list[FileRow] = []  # the files changed against the base (kept after the sandbox stops)
    changes_note: str = ""  # why no files show: not read yet, none, unreadable
    boot_done: str = ""  # the sandbox's last boot: "Git sync done in 0.1 s · … · Ready (image)"
    people: str = ""  # participants: "Ada Lovelace (owner) · Grace Hopper (member)"
    sandbox_limits: str = ""  # what its sandbox may use and reach (memory, processes, CPU, network)
    editing_title: bool = False
    archived: bool = False
    oldest_seq: int = 0  # the oldest event loaded; older history pages in on request
    has_older: bool = False
    _typing_at: float = 0.0
    _cursor: int = 0  # the change feed's revision this tab has applied (it catches up from here)

    @rx.var
    def status_color(self) -> str:
        return status_color(self.status)

    @rx.var
    def children(self) -> list[dict[str, str]]:
        """The sessions this one's agent started (their cards are in the timeline too)."""
        return [{"title": i.text, "link": i.link, "status": i.status} for i in self.items if i.kind == "child"]

    @rx.var
    def watching(self) -> str:
        return " · ".join(self.watchers)

    @rx.var
    def running(self) -> bool:
        return any(q.status == "processing" for q in self.queue)

    @rx.event
    async def open(self) -> Any:
        sid = session_id_from_path(str(self.router.url.path))
        try:
            loaded = await asyncio.to_thread(_load, sid)
        except InspectError:
            self.not_found, self.session_id = True, sid
            return None
        session = loaded["snapshot"]["session"]
        self.not_found = False
        self.session_id = sid
        self.title = session["title"] or "Untitled session"
        self.repo, self.branch = loaded["repo"], session["base_branch"]
        self.status, self.status_reason = session["status"], session["status_reason"]
        self.archived, self.editing_title = session["archived"], False
        self.model, self.work_branch = session["model"], session["branch"]
        self.files, self.changes_note = loaded["changes"]
        self.boot_done = " · ".join(boot_timings(loaded["snapshot"].get("boot") or []))
        self.people = " · ".join(
            f"{p['name']} ({p['role']})" for p in loaded["snapshot"].get("participants") or [] if p.get("name")
        )
        self.source, self.source_link = session["source"], http_url(session.get("source_link") or "")
        self.started_by, self.fork_ref = session.get("started_by") or "", session.get("fork_ref") or ""
        agent = loaded["snapshot"].get("agent") or {}
        parts = [f"MCP: {', '.join(agent['mcp'])}" if agent.get("mcp") else ""]
        parts.append(f"skills: {', '.join(agent['skills'])}" if agent.get("skills") else "")
        self.agent_has = " · ".join(p for p in parts if p)
        self.sandbox_limits = loaded["snapshot"].get("sandbox_limits", "")
        self._cursor = int(loaded["snapshot"].get("cursor", 0))
        before = self._view()
        view = dataclasses.replace(
            before,
            pr_url="",
            pr_state="",
            branch_pushed="",
            branch_url="",
            cost=cost_shown(loaded["snapshot"].get("cost") or {}),
            previews=preview_links(sid, loaded["snapshot"].get("previews") or []),
        )
        for artifact in loaded["snapshot"]["artifacts"]:
            view = reduce(view, {"type": "artifact", "data": artifact})
        self._show(before, view)
        self.items = merge([], loaded["events"])
        self.oldest_seq = loaded["events"][0]["seq"] if loaded["events"] else 0
        self.has_older = self.oldest_seq > 1
        self.live_done, self.live_tail, self.live_message, self.error = "", "", "", ""
        self.queue = [
            QueueRow(id=q["id"], author=q["author_name"], content=q["content"][:300], status=q["status"])
            for q in loaded["snapshot"]["queue"]
        ]
        running = next((q["id"] for q in loaded["snapshot"]["queue"] if q["status"] == "processing"), "")
        partial = next((i for i in self.items if i.key == f"answer:{running}"), None)
        if partial is not None:  # opened mid-answer: the stored part continues live
            self.items = [i for i in self.items if i is not partial]
            self.live_message = running
            self.live_done, self.live_tail = settle("", partial.text)
        self.watchers = [self.user_name] if self.user_name else []
        if loaded["events"] and self.user_id:
            await asyncio.to_thread(
                sessions_ctl.mark_read, services.current().engine, sid, self.user_id, loaded["events"][-1]["seq"]
            )
        return SessionPageState.follow

    # --- live ------------------------------------------------------------------------------------
    @rx.event(background=True)
    async def follow(self) -> None:
        """Apply the session's live events to this tab until it leaves the page or disconnects."""
        plane = services.current().plane
        async with self:
            sid, me, client = self.session_id, self._me(), self.router.session.client_token
            user_id, cursor = self.user_id, self._cursor
        read_seq, marked, read_at = 0, 0, time.monotonic()
        follower = Follower(plane.events, sid, cursor)
        subscription = await plane.hub.subscribe(session_channel(sid))
        await presence.announce(plane.hub, sid, presence.Presence(event="join", user=me))
        behind = True  # what was written between the page's load and this subscription: catch up first
        try:
            while True:
                taken = await follower.take(subscription, IDLE_CHECK_S, behind=behind)
                if taken is None:
                    return
                batch, behind = taken.events, False
                if taken.caught_up:
                    async with self:
                        self._settle_live(batch)
                if not connected(client):
                    return
                if any(e.get("type") == "prompt" for e in batch):  # a picked element is kept on its message
                    batch = await asyncio.to_thread(prompts.attach_contexts, plane.engine, batch)
                read_seq = max([read_seq, *(_newest_seq(e) for e in batch)])
                if read_seq > marked and user_id and time.monotonic() - read_at > MARK_READ_S:
                    read_at, marked = time.monotonic(), read_seq
                    await asyncio.to_thread(sessions_ctl.mark_read, plane.engine, sid, user_id, read_seq)
                async with self:
                    if self.session_id != sid:
                        return  # the tab moved to another session
                    self._cursor = follower.cursor
                    reload_queue, completed = self._apply(batch)
                if any(e.get("type") == CHANGES_KEPT for e in batch):
                    kept = await asyncio.to_thread(changes_data.kept, plane.engine, sid)
                    changed = await asyncio.to_thread(_file_rows, kept)  # parsing a big diff: off the loop
                    async with self:
                        if self.session_id == sid:
                            self.files, self.changes_note = changed
                if reload_queue or completed:
                    rows = await asyncio.to_thread(_queue_rows, sid)
                    answers = await asyncio.to_thread(_answers, sid, completed)
                    async with self:
                        self.queue = rows
                        if answers:
                            self.items = merge(self.items, answers)
                await asyncio.sleep(FLUSH_INTERVAL_S)
        finally:
            subscription.close()
            if read_seq > marked and user_id:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(sessions_ctl.mark_read, plane.engine, sid, user_id, read_seq)
            with contextlib.suppress(Exception):
                await presence.announce(plane.hub, sid, presence.Presence(event="leave", user=me))

    def _settle_live(self, events: list[dict[str, Any]]) -> None:
        """Caught-up rows hold the running prompt's answer as it is so far: it continues the live
        answer (later tokens append to it) instead of joining the timeline twice. Removed in place."""
        running = next((q.id for q in self.queue if q.status == "processing"), "")
        for event in [e for e in events if e.get("type") == "text" and e.get("message_id") == running and running]:
            events.remove(event)
            self.live_message = running
            self.live_done, self.live_tail = settle("", _text(event))

    def _apply(self, events: list[dict[str, Any]]) -> tuple[bool, list[str]]:
        """Apply a batch of live events: (the prompt queue changed, prompts that completed)."""
        timeline: list[dict[str, Any]] = []
        queue_changed = False
        completed: list[str] = []
        before = view = self._view()
        for event in events:
            kind = event.get("type")
            view = reduce(view, event)
            if kind == "token":
                if event.get("message_id") != self.live_message:
                    self.live_message, self.live_done, self.live_tail = event.get("message_id") or "", "", ""
                done, tail = settle(self.live_done, self.live_tail + _text(event))
                if done != self.live_done:
                    self.live_done = done
                self.live_tail = tail
            elif kind == "presence":
                self._presence(event)
            elif kind == "typing":
                name = str(event.get("user", {}).get("name", ""))
                if name != self.user_name:
                    self.typing, self._typing_at = f"{name} is typing…", time.monotonic()
            if kind in TIMELINE_TYPES:
                timeline.append(event)
            if kind in ("prompt", "prompt_started", "prompt_cancelled", "execution_complete"):
                queue_changed = True
            if kind == "execution_complete":
                completed.append(str(event.get("message_id") or ""))
                if event.get("message_id") == self.live_message:
                    # the answer is complete: it becomes a timeline item (its stored text follows)
                    timeline.append(
                        {
                            "type": "text",
                            "seq": event.get("seq", 0),
                            "message_id": self.live_message,
                            "data": {"text": self.live_done + self.live_tail},
                        }
                    )
                    self.live_done, self.live_tail, self.live_message = "", "", ""
        self._show(before, view)
        if timeline:
            self.items = merge(self.items, _order_answers(timeline))
        if self.typing and time.monotonic() - self._typing_at > TYPING_SHOWN_S:
            self.typing = ""
        return queue_changed, completed

    def _presence(self, event: dict[str, Any]) -> None:
        name = str(event.get("user", {}).get("name", ""))
        if not name:
            return
        if event.get("event") == "leave":
            self.watchers = [w for w in self.watchers if w != name]
        elif name not in self.watchers:
            self.watchers = [*self.watchers, name]
            if event.get("event") == "join" and self.user_name:
                # say we are here too, so the newcomer sees us
                plane = services.current().plane
                here = presence.Presence(event="here", user=self._me())
                plane.spawn_task(presence.announce(plane.hub, self.session_id, here))

    def _view(self) -> SessionView:
        return SessionView(
            session_id=self.session_id,
            branch=self.branch,
            title=self.title,
            status=self.status,
            status_reason=self.status_reason,
            boot=self.boot,
            boot_steps=tuple(self.boot_steps),
            boot_done=self.boot_done,
            previews=tuple((p["label"], p["href"]) for p in self.previews),
            pr_url=self.pr_url,
            pr_state=self.pr_state,
            branch_pushed=self.branch_pushed,
            branch_url=self.branch_url,
            cost=self.cost,
        )

    def _show(self, before: SessionView, after: SessionView) -> None:
        """Set the fields the reducer changed (and only those: each set field is sent to the browser)."""
        for name in CHANGING:
            value = getattr(after, name)
            if value == getattr(before, name):
                continue
            if name == "boot_steps":
                value = list(value)
            elif name == "previews":
                value = [{"label": label, "href": href} for label, href in value]
            setattr(self, name, value)

    @rx.event
    async def load_older(self) -> None:
        if not self.has_older:
            return
        plane = services.current().plane
        older = await asyncio.to_thread(plane.events.before, self.session_id, before=self.oldest_seq, limit=HISTORY)
        if older:
            shown = await asyncio.to_thread(prompts.attach_contexts, plane.engine, [e.to_dict() for e in older])
            self.items = merge(merge([], shown), []) + self.items
            self.oldest_seq = older[0].seq
        self.has_older = bool(older) and self.oldest_seq > 1

    # --- actions -------------------------------------------------------------------------------
    @rx.event(background=True)
    async def load_changes(self) -> None:
        """The files changed, as Details opens: read in the sandbox while it runs, else as kept
        after its last prompt (a page load shows the kept copy: no diff in the sandbox per view)."""
        async with self:
            sid = self.session_id
        diff = await services.current().plane.changes(sid)
        rows = await asyncio.to_thread(_file_rows, diff)  # parsing a big diff: off the loop
        async with self:
            if self.session_id == sid:
                self.files, self.changes_note = rows

    @rx.event
    def edit_title(self) -> None:
        self.editing_title = True

    @rx.event
    async def save_title(self, form: dict) -> None:
        try:
            session = await asyncio.to_thread(
                sessions_ctl.rename, services.current().engine, self.session_id, str(form.get("title", ""))
            )
        except InspectError as exc:
            self.error = exc.message
            return
        self.title, self.editing_title, self.error = session.title, False, ""

    @rx.event
    async def toggle_archive(self) -> None:
        found = services.current()
        me = await found.plane.person(self.user_id)
        session = await found.children.set_archived(self.session_id, not self.archived, me)  # children stop too
        self.archived = session.archived

    @rx.event
    def set_draft(self, value: str) -> None:
        self.draft = value

    @rx.event
    def set_plan_mode(self, value: bool) -> None:
        self.plan_mode = value

    @rx.event
    def build_this(self, plan: str) -> None:
        """A plan's "Build this": a build prompt carrying the plan, in the composer to edit first."""
        self.draft, self.plan_mode = f"Build this plan:\n\n{plan}", False

    @rx.event
    async def send(self) -> None:
        content = self.draft.strip()
        if not content:
            return
        plane = services.current().plane
        user = await plane.person(self.user_id)
        picked = await self.get_state(SelectionState)
        context = picked.take()  # an element picked with the Chrome extension, if any
        try:
            await plane.submit_prompt(
                session_id=self.session_id,
                user=user,
                content=content,
                source="extension" if context else "web",
                context=context,
                mode="plan" if self.plan_mode else "build",
            )
        except InspectError as exc:
            self.error = exc.message
            return
        self.draft, self.error, self.plan_mode = "", "", False

    def _me(self) -> presence.Person:
        return presence.Person(id=self.user_id or None, name=self.user_name)

    @rx.event
    async def typed(self, _key: str) -> None:
        await services.current().plane.typing(self.session_id, self._me())

    @rx.event
    async def stop(self) -> None:
        found = services.current()
        try:
            await found.children.stop_parent(self.session_id, await found.plane.person(self.user_id))
        except InspectError as exc:
            self.error = exc.message

    @rx.event(background=True)
    async def sleep_sandbox(self) -> None:
        """Stop the sandbox now (the snapshot can take a while: off the handler's lock)."""
        async with self:
            sid, name = self.session_id, self.user_name
        try:
            await services.current().plane.put_to_sleep(sid, by=name or "someone")
        except InspectError as exc:
            async with self:
                self.error = exc.message

    @rx.event
    async def cancel(self, message_id: str) -> None:
        plane = services.current().plane
        try:
            who = await plane.person(self.user_id)
            await plane.cancel_prompt(session_id=self.session_id, message_id=message_id, user=who)
        except InspectError as exc:
            self.error = exc.message


def _answers(session_id: str, message_ids: list[str]) -> list[dict[str, Any]]:
    """The stored answer rows of these prompts (complete, whatever this tab saw live)."""
    if not message_ids:
        return []
    return [e.to_dict() for e in services.current().plane.events.answers(session_id, message_ids)]


def _newest_seq(event: dict[str, Any]) -> int:
    seq = event.get("seq")
    return seq if isinstance(seq, int) else 0


def _order_answers(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An answer item goes before its completion notice."""
    answers = [e for e in events if e.get("type") == "text"]
    rest = [e for e in events if e.get("type") != "text"]
    out: list[dict[str, Any]] = []
    for event in rest:
        if event.get("type") == "execution_complete":
            out += [a for a in answers if a.get("message_id") == event.get("message_id")]
        out.append(event)
    out += [a for a in answers if a not in out]
    return out


def session_id_from_path(path: str) -> str:
    """``/sessions/<id>`` or ``/extension/<id>`` → ``<id>`` (also with a trailing slash or query)."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    return parts[1] if len(parts) >= 2 and parts[0] in ("sessions", "extension") else ""


def _text(event: dict[str, Any]) -> str:
    """A live token's text, or an answer row's."""
    data = data_of(event)
    return data.text if isinstance(data, TextData) else ""
