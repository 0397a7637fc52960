"""The sessions list (sidebar and home page): its state and its components."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import reflex as rx

from inspect_app import services
from inspect_app.control.data import sessions
from inspect_app.ui import routes
from inspect_app.ui.formatting import relative_time, status_color
from inspect_app.ui.state import AppState, connected


@dataclasses.dataclass
class SessionRow:
    id: str
    title: str
    status: str
    status_color: str
    repository: str
    branch: str
    creator: str
    updated: str
    url: str
    pr_state: str
    pr_color: str
    unread: bool
    nested: bool = False  # shown under its parent (a child session whose parent is listed)


def nest(summaries: list[sessions.SessionSummary]) -> list[tuple[sessions.SessionSummary, bool]]:
    """The list in its order, but each child right under its parent when the parent is listed too
    (then marked nested); a child whose parent is not listed stays where it is, on its own."""
    listed = {s.id for s in summaries}
    children: dict[str, list[sessions.SessionSummary]] = {}
    for summary in summaries:
        if summary.parent_id in listed:
            children.setdefault(summary.parent_id or "", []).append(summary)
    out: list[tuple[sessions.SessionSummary, bool]] = []
    for summary in summaries:
        if summary.parent_id in listed:
            continue  # placed under its parent
        out.append((summary, False))
        out += [(child, True) for child in children.get(summary.id, [])]
    return out


def _row(summary: sessions.SessionSummary, nested: bool = False) -> SessionRow:
    return SessionRow(
        id=summary.id,
        title=summary.title,
        status=summary.status,
        status_color=status_color(summary.status),
        repository=summary.repository,
        branch=summary.base_branch,
        creator=summary.creator,
        updated=relative_time(summary.updated_at),
        url=routes.session_url(summary.id),
        pr_state=summary.pr_state,
        pr_color=PR_COLORS.get(summary.pr_state, "gray"),
        unread=summary.unread,
        nested=nested,
    )


PR_COLORS = {"open": "green", "merged": "purple", "closed": "red"}
REFRESH_S = 10.0  # the sidebar picks up new sessions, statuses and unread marks this often


class SessionListState(AppState):
    rows: list[SessionRow] = []
    loaded: bool = False
    error: str = ""
    mine: bool = False
    search: str = ""
    _watching: bool = False

    @rx.event
    async def set_scope(self, value: str | list[str]) -> None:
        self.mine = value == "mine"
        await self._refresh()

    @rx.event
    async def set_search(self, value: str) -> None:
        self.search = value
        await self._refresh()

    @rx.event
    async def load(self) -> Any:
        await self._refresh()
        if not self._watching:
            self._watching = True
            return SessionListState.watch
        return None

    def _query(self) -> dict[str, Any]:
        return {
            "limit": 50,
            "search": self.search,
            "viewer_id": self.user_id or None,
            "creator_id": self.user_id if self.mine else None,
        }

    @staticmethod
    async def _fetch(query: dict[str, Any]) -> list[SessionRow] | str:
        """The rows, or what to tell the person (never holds the tab's state: it queries the database)."""
        try:
            summaries = await asyncio.to_thread(sessions.list_sessions, services.current().engine, **query)
        except Exception as exc:  # noqa: BLE001 - shown to the person, not swallowed
            return f"Could not load sessions: {exc.__class__.__name__}"
        return [_row(s, nested) for s, nested in nest(summaries)]

    def _apply(self, fetched: list[SessionRow] | str) -> None:
        if isinstance(fetched, str):
            self.error = fetched
            return
        if fetched != self.rows:  # an unchanged list is not re-sent to the browser
            self.rows = fetched
        self.error = ""
        self.loaded = True

    async def _refresh(self) -> None:
        self._apply(await self._fetch(self._query()))

    @rx.event(background=True)
    async def watch(self) -> None:
        """Refresh the list every few seconds while this tab is open (one loop per tab). The query
        runs outside ``async with self``: the tab's other events (its live stream) need not wait."""
        async with self:
            client = self.router.session.client_token
        try:
            while True:
                await asyncio.sleep(REFRESH_S)
                if not connected(client):
                    return
                async with self:
                    query = self._query()
                fetched = await self._fetch(query)
                async with self:
                    self._apply(fetched)
        finally:
            async with self:
                self._watching = False


def status_badge(row: SessionRow) -> rx.Component:
    return rx.badge(row.status, color_scheme=row.status_color, variant="soft", size="1")


def pr_badge(row: SessionRow) -> rx.Component:
    return rx.cond(
        row.pr_state != "",
        rx.badge(rx.icon("git-pull-request", size=12), row.pr_state, color_scheme=row.pr_color, size="1"),
    )


def unread_dot(row: SessionRow) -> rx.Component:
    return rx.cond(
        row.unread,
        rx.box(
            width="8px",
            height="8px",
            min_width="8px",
            border_radius="50%",
            background=rx.color("accent", 9),
            title="New activity",
            class_name="unread-dot",
        ),
    )


def sidebar_item(row: SessionRow) -> rx.Component:
    """Two lines: the title across the whole width, its state under it (badges beside a title left
    it a few letters)."""
    return rx.link(
        rx.vstack(
            rx.text(
                row.title,
                size="2",
                overflow="hidden",
                text_overflow="ellipsis",
                white_space="nowrap",
                width="100%",
                class_name="sidebar-title",
            ),
            rx.hstack(
                status_badge(row),
                pr_badge(row),
                rx.spacer(),
                unread_dot(row),
                width="100%",
                align="center",
                spacing="1",
            ),
            spacing="1",
            width="100%",
        ),
        href=row.url,
        underline="none",
        color_scheme="gray",
        high_contrast=True,
        padding_left=rx.cond(row.nested, "1.5rem", "0.5rem"),  # a child, under its parent
        padding_right="0.5rem",
        padding_y="0.35rem",
        border_radius="6px",
        _hover={"background": rx.color("gray", 4)},
        width="100%",
        class_name=rx.cond(row.nested, "sidebar-session sidebar-child", "sidebar-session"),
    )


def session_card(row: SessionRow) -> rx.Component:
    return rx.link(
        rx.card(
            rx.hstack(
                rx.vstack(
                    rx.text(row.title, weight="medium", class_name="session-card-title"),
                    rx.text(
                        row.repository,
                        " @ ",
                        row.branch,
                        " · ",
                        row.creator,
                        " · ",
                        row.updated,
                        size="1",
                        color_scheme="gray",
                    ),
                    spacing="1",
                    align="start",
                ),
                rx.spacer(),
                unread_dot(row),
                pr_badge(row),
                status_badge(row),
                align="center",
                width="100%",
            ),
            width="100%",
        ),
        href=row.url,
        underline="none",
        width="100%",
        class_name="session-card",
    )


def empty_state() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon("inbox", size=36, color=rx.color("gray", 9)),
            rx.heading("No sessions yet", size="4"),
            rx.text(
                "Sessions you and your team start will appear here, with their status and pull requests.",
                color_scheme="gray",
                text_align="center",
                max_width="28rem",
            ),
            align="center",
            spacing="2",
        ),
        padding_y="3rem",
        width="100%",
        id="sessions-empty",
    )


def sessions_list() -> rx.Component:
    return rx.cond(
        SessionListState.error != "",
        rx.callout(SessionListState.error, icon="triangle_alert", color_scheme="red"),
        rx.cond(
            SessionListState.loaded,
            rx.cond(
                SessionListState.rows.length() > 0,
                rx.vstack(rx.foreach(SessionListState.rows, session_card), width="100%", id="sessions-list"),
                empty_state(),
            ),
            rx.center(rx.spinner(size="3"), padding_y="3rem", width="100%"),
        ),
    )


def sidebar_sessions() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text("Sessions", size="1", weight="bold", color_scheme="gray"),
            rx.spacer(),
            rx.segmented_control.root(
                rx.segmented_control.item("All", value="all"),
                rx.segmented_control.item("Mine", value="mine"),
                value=rx.cond(SessionListState.mine, "mine", "all"),
                on_change=SessionListState.set_scope,
                size="1",
                id="sessions-scope",
            ),
            width="100%",
            align="center",
            padding_x="0.5rem",
        ),
        rx.input(
            placeholder="Search title or repository",
            value=SessionListState.search,
            on_change=SessionListState.set_search.debounce(300),
            size="1",
            width="100%",
            id="sessions-search",
        ),
        rx.box(  # the list scrolls; the sidebar's own controls below it stay in view
            rx.cond(
                SessionListState.rows.length() > 0,
                rx.vstack(rx.foreach(SessionListState.rows, sidebar_item), spacing="1", width="100%"),
                rx.text("Nothing here yet", size="1", color_scheme="gray", padding_x="0.5rem"),
            ),
            overflow_y="auto",
            flex="1",
            min_height="0",
            width="100%",
            id="sidebar-sessions",
        ),
        spacing="1",
        width="100%",
        flex="1",
        min_height="0",
    )
