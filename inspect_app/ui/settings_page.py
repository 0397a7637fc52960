"""Settings: repositories (add, prebuild), secrets (write-only), the default model, API tokens."""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from inspect_app import services
from inspect_app.control import repositories, secrets, users
from inspect_app.errors import InspectError
from inspect_app.ui.formatting import relative_time
from inspect_app.ui.layout import page_frame
from inspect_app.ui.state import AppState


@dataclasses.dataclass
class RepoRow:
    id: str
    name: str
    url: str
    branch: str
    prebuild: bool


@dataclasses.dataclass
class TokenRow:
    id: str
    name: str
    prefix: str
    created: str
    status: str


class SettingsState(AppState):
    repos: list[RepoRow] = []
    secret_names: list[str] = []
    tokens: list[TokenRow] = []
    default_model: str = ""
    new_token: str = ""  # shown once, right after creation
    message: str = ""
    error: str = ""

    def _load(self) -> None:
        engine = services.current().engine
        self.repos = [
            RepoRow(str(r.id), r.name, r.url, r.default_branch, r.prebuild) for r in repositories.list_all(engine)
        ]
        self.secret_names = secrets.names(engine)
        self.tokens = [
            TokenRow(
                str(t.id),
                t.name or "token",
                t.prefix + "…",
                relative_time(t.created_at),
                "revoked" if t.revoked_at else "active",
            )
            for t in users.list_api_tokens(engine, self.user_id)
        ]
        self.default_model = services.current().settings.resolved_default_model

    @rx.event
    async def load(self) -> None:
        await asyncio.to_thread(self._load)

    async def _do(self, action: object, done: str) -> None:
        try:
            await asyncio.to_thread(action)  # type: ignore[arg-type]
        except InspectError as exc:
            self.error, self.message = exc.message, ""
            return
        self.error, self.message = "", done
        await asyncio.to_thread(self._load)

    @rx.event
    async def add_repo(self, form: dict) -> None:
        url = str(form.get("url", ""))
        await self._do(lambda: repositories.register(services.current().engine, url), f"Added {url}")

    @rx.event
    async def toggle_prebuild(self, repo_id: str, enabled: bool) -> None:
        await self._do(
            lambda: repositories.set_prebuild(services.current().engine, int(repo_id), enabled), "Prebuild updated"
        )

    @rx.event
    async def put_secret(self, form: dict) -> None:
        key, value = str(form.get("key", "")).strip(), str(form.get("value", ""))
        s = services.current()
        await self._do(lambda: secrets.put(s.engine, s.cipher, key, value), f"Saved secret {key}")

    @rx.event
    async def delete_secret(self, key: str) -> None:
        await self._do(lambda: secrets.delete(services.current().engine, key), f"Deleted secret {key}")

    @rx.event
    async def create_token(self, form: dict) -> None:
        name = str(form.get("name", "")).strip() or "web"
        token = await asyncio.to_thread(users.issue_api_token, services.current().engine, self.user_id, name=name)
        self.new_token, self.message, self.error = token, "Copy this token now: it is not shown again.", ""
        await asyncio.to_thread(self._load)

    @rx.event
    async def revoke_token(self, token_id: str) -> None:
        await self._do(
            lambda: users.revoke_api_token(services.current().engine, self.user_id, int(token_id)), "Token revoked"
        )


def section(title: str, *children: rx.Component) -> rx.Component:
    return rx.card(rx.vstack(rx.heading(title, size="4"), *children, width="100%", spacing="3"), width="100%")


def repo_row(row: RepoRow) -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.text(row.name, weight="medium"),
            rx.text(row.url, " @ ", row.branch, size="1", color_scheme="gray"),
            spacing="0",
            flex="1",
        ),
        rx.text("Prebuild", size="1"),
        rx.switch(checked=row.prebuild, on_change=lambda v: SettingsState.toggle_prebuild(row.id, v)),
        width="100%",
        align="center",
        class_name="repo-row",
    )


def token_row(row: TokenRow) -> rx.Component:
    return rx.hstack(
        rx.code(row.prefix),
        rx.text(row.name, size="2", flex="1"),
        rx.text(row.created, size="1", color_scheme="gray"),
        rx.badge(row.status, color_scheme=rx.cond(row.status == "active", "green", "gray")),
        rx.cond(
            row.status == "active",
            rx.button(
                "Revoke", size="1", variant="ghost", color_scheme="red", on_click=SettingsState.revoke_token(row.id)
            ),
        ),
        width="100%",
        align="center",
    )


def settings_page() -> rx.Component:
    s = SettingsState
    return page_frame(
        rx.heading("Settings", size="7"),
        rx.cond(s.error != "", rx.callout(s.error, icon="triangle_alert", color_scheme="red", id="settings-error")),
        rx.cond(s.message != "", rx.callout(s.message, icon="check", color_scheme="green")),
        section(
            "Repositories",
            rx.vstack(rx.foreach(s.repos, repo_row), width="100%", id="repo-list"),
            rx.form(
                rx.hstack(
                    rx.input(
                        name="url", placeholder="/path/to/repo or https://…/repo.git", width="100%", id="repo-url"
                    ),
                    rx.button("Add", type="submit", id="repo-add"),
                    width="100%",
                ),
                on_submit=s.add_repo,
                reset_on_submit=True,
            ),
        ),
        section(
            "Secrets",
            rx.text(
                "Values are write-only: they go into sandboxes, never back to a browser.", size="2", color_scheme="gray"
            ),
            rx.foreach(
                s.secret_names,
                lambda name: rx.hstack(
                    rx.code(name),
                    rx.spacer(),
                    rx.button("Delete", size="1", variant="ghost", color_scheme="red", on_click=s.delete_secret(name)),
                    width="100%",
                ),
            ),
            rx.form(
                rx.hstack(
                    rx.input(name="key", placeholder="NAME", id="secret-key"),
                    rx.input(name="value", placeholder="value", type="password", width="100%"),
                    rx.button("Save", type="submit"),
                    width="100%",
                ),
                on_submit=s.put_secret,
                reset_on_submit=True,
            ),
        ),
        section(
            "Models",
            rx.text("Default model: ", rx.code(s.default_model)),
            rx.text(
                "Set INSPECT_DEFAULT_MODEL (or INSPECT_LLM_BASE_URL and INSPECT_LLM_MODEL) and restart; "
                "provider keys are read from ANTHROPIC_API_KEY / OPENAI_API_KEY.",
                size="2",
                color_scheme="gray",
            ),
        ),
        section(
            "API tokens",
            rx.cond(s.new_token != "", rx.code_block(s.new_token, language="log")),
            rx.vstack(rx.foreach(s.tokens, token_row), width="100%"),
            rx.form(
                rx.hstack(
                    rx.input(name="name", placeholder="What is it for?"), rx.button("Create token", type="submit")
                ),
                on_submit=s.create_token,
                reset_on_submit=True,
            ),
        ),
    )
