"""The home page's new-session composer: pick a repository (the sandbox starts warming), write, send."""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from inspect_app import services
from inspect_app.control.data import instance, repositories, sessions
from inspect_app.errors import InspectError
from inspect_app.ui import routes
from inspect_app.ui.selection import SelectionState
from inspect_app.ui.state import AppState


@dataclasses.dataclass
class RepoOption:
    id: str
    name: str


class NewSessionState(AppState):
    repos: list[RepoOption] = []
    repo_filter: str = ""
    repo_id: str = ""
    branch: str = ""  # empty: the repository's default branch
    model: str = ""  # empty: the instance's default model
    default_model: str = ""
    prompt: str = ""
    session_id: str = ""  # created as soon as a repository is picked, so its sandbox warms early
    _created_for: tuple[str, str, str] = ("", "", "")  # (repository, branch, model) of that session
    error: str = ""

    @rx.var
    def shown_repos(self) -> list[RepoOption]:
        needle = self.repo_filter.strip().lower()
        return [r for r in self.repos if needle in r.name.lower() or r.id == self.repo_id]

    @rx.event
    async def load_repos(self) -> None:
        engine = services.current().engine
        rows = await asyncio.to_thread(repositories.list_all, engine)
        self.repos = [RepoOption(id=str(r.id), name=r.name) for r in rows]
        if len(self.repos) == 1 and not self.repo_id:
            self.repo_id = self.repos[0].id  # the only choice (its session starts once they type)
        configured = services.current().settings.resolved_default_model
        self.default_model = await asyncio.to_thread(instance.default_model, engine, configured)

    @rx.event
    def set_repo_filter(self, value: str) -> None:
        self.repo_filter = value

    @rx.event
    def set_branch(self, value: str) -> None:
        self.branch = value

    @rx.event
    def set_model(self, value: str) -> None:
        self.model = value

    @rx.event
    async def pick(self, repo_id: str) -> None:
        self.repo_id, self.error = repo_id, ""
        await self._prepare()

    async def _prepare(self) -> bool:
        """Have a warming session for the chosen repository, branch and model (a new one if they changed)."""
        wanted = (self.repo_id, self.branch.strip(), self.model.strip())
        if self.session_id and wanted == self._created_for:
            return True
        plane = services.current().plane
        try:
            session = await plane.create_session(
                repository_id=int(self.repo_id),
                creator_id=self.user_id,
                branch=wanted[1] or None,
                model=wanted[2],
                source="web",
            )
        except (InspectError, ValueError) as exc:
            self.error = getattr(exc, "message", str(exc))
            return False
        if self.session_id:  # the one warmed for an earlier choice is not needed any more
            discarded = self.session_id
            await asyncio.to_thread(sessions.set_archived, plane.engine, discarded, True)
            plane.spawn_task(plane.sleep(discarded, "replaced before the first prompt"))
        self.session_id, self._created_for, self.error = session.id, wanted, ""
        return True

    @rx.event
    async def set_prompt(self, value: str) -> None:
        self.prompt = value
        if value.strip() and self.repo_id and not self.session_id:
            await self._prepare()  # they started writing: warm the sandbox now

    @rx.event
    async def start(self) -> rx.event.EventSpec | None:
        if not self.repo_id:
            self.error = "Pick a repository first."
            return None
        if not self.prompt.strip():
            self.error = "Write what you want changed."
            return None
        if not await self._prepare():
            return None
        plane = services.current().plane
        context = (await self.get_state(SelectionState)).take()  # picked with the Chrome extension
        embedded = str(self.router.url.path).startswith(routes.EXTENSION)
        try:
            await plane.submit_prompt(
                session_id=self.session_id,
                user=await plane.person(self.user_id),
                content=self.prompt,
                source="extension" if embedded else "web",
                context=context,
            )
        except InspectError as exc:
            self.error = exc.message
            return None
        target = (routes.extension_session_url if embedded else routes.session_url)(self.session_id)
        self.session_id, self.prompt, self.repo_id, self._created_for = "", "", "", ("", "", "")
        self.repo_filter, self.branch, self.model = "", "", ""
        return rx.redirect(target)


def new_session() -> rx.Component:
    s = NewSessionState
    return rx.card(
        rx.vstack(
            rx.heading("New session", size="4"),
            rx.cond(
                s.repos.length() > 0,
                rx.hstack(
                    rx.input(
                        value=s.repo_filter,
                        on_change=s.set_repo_filter,
                        placeholder="Find a repository",
                        size="2",
                        id="repo-filter",
                        width=["100%", "12rem"],
                    ),
                    rx.select.root(
                        rx.select.trigger(placeholder="Repository", id="repo-picker"),
                        rx.select.content(rx.foreach(s.shown_repos, lambda r: rx.select.item(r.name, value=r.id))),
                        value=s.repo_id,
                        on_change=s.pick,
                    ),
                    rx.input(
                        value=s.branch,
                        on_change=s.set_branch.debounce(400),
                        placeholder="branch (default)",
                        size="2",
                        id="branch",
                        width=["100%", "9rem"],
                    ),
                    rx.input(
                        value=s.model,
                        on_change=s.set_model.debounce(400),
                        placeholder=s.default_model,
                        size="2",
                        id="model",
                        flex="1",
                        min_width="10rem",
                    ),
                    width="100%",
                    wrap="wrap",
                    align="center",
                ),
                rx.hstack(
                    rx.text("No repositories yet.", size="2", color_scheme="gray"),
                    rx.link("Add one in Settings", href=routes.SETTINGS, size="2"),
                ),
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
        id="new-session",
    )
