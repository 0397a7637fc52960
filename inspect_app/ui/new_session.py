"""The home page's new-session composer: pick a repository (the sandbox starts warming), write, send."""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from inspect_app import services
from inspect_app.control import repositories, sessions
from inspect_app.errors import InspectError
from inspect_app.ui import routes
from inspect_app.ui.state import AppState


@dataclasses.dataclass
class RepoOption:
    id: str
    name: str


class NewSessionState(AppState):
    repos: list[RepoOption] = []
    repo_id: str = ""
    prompt: str = ""
    session_id: str = ""  # created as soon as a repository is picked, so its sandbox warms early
    error: str = ""

    @rx.event
    async def load_repos(self) -> None:
        rows = await asyncio.to_thread(repositories.list_all, services.current().engine)
        self.repos = [RepoOption(id=str(r.id), name=r.name) for r in rows]

    @rx.event
    async def pick(self, repo_id: str) -> None:
        self.repo_id, self.error = repo_id, ""
        plane = services.current().plane
        try:
            session = await asyncio.to_thread(
                sessions.create, plane.engine, repository_id=int(repo_id), creator_id=self.user_id, source="web"
            )
        except (InspectError, ValueError) as exc:
            self.error = getattr(exc, "message", str(exc))
            return
        self.session_id = session.id
        plane.warm(session.id)

    @rx.event
    def set_prompt(self, value: str) -> None:
        self.prompt = value

    @rx.event
    async def start(self) -> rx.event.EventSpec | None:
        if not self.session_id:
            self.error = "Pick a repository first."
            return None
        if not self.prompt.strip():
            self.error = "Write what you want changed."
            return None
        plane = services.current().plane
        try:
            await plane.submit_prompt(
                session_id=self.session_id, user=plane.user(self.user_id), content=self.prompt, source="web"
            )
        except InspectError as exc:
            self.error = exc.message
            return None
        target = routes.session_url(self.session_id)
        self.session_id, self.prompt, self.repo_id = "", "", ""
        return rx.redirect(target)


def new_session() -> rx.Component:
    s = NewSessionState
    return rx.card(
        rx.vstack(
            rx.heading("New session", size="4"),
            rx.cond(
                s.repos.length() > 0,  # type: ignore[attr-defined]
                rx.select.root(
                    rx.select.trigger(placeholder="Repository", id="repo-picker"),
                    rx.select.content(rx.foreach(s.repos, lambda r: rx.select.item(r.name, value=r.id))),
                    value=s.repo_id,
                    on_change=s.pick,
                ),
                rx.text("No repositories yet: add one with POST /api/repositories.", size="2", color_scheme="gray"),
            ),
            rx.text_area(
                value=s.prompt,
                on_change=s.set_prompt,
                placeholder="What should change?",
                rows="3",
                width="100%",
                id="new-prompt",
            ),
            rx.hstack(
                rx.button("Start", on_click=s.start, id="start-session"),
                rx.cond(s.session_id != "", rx.text("Sandbox warming up…", size="1", color_scheme="gray")),
                align="center",
            ),
            rx.cond(s.error != "", rx.callout(s.error, icon="triangle_alert", color_scheme="red", size="1")),
            width="100%",
        ),
        width="100%",
    )
