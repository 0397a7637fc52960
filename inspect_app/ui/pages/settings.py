"""Settings: repositories (add, prebuild), secrets (write-only), the default model, API tokens.

Everyone manages their own API tokens here; the rest is for admins (``control/roles``): the page hides
it from others, and the control functions the handlers call refuse them anyway.
"""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from inspect_app import services
from inspect_app.control import prebuild
from inspect_app.control.data import instance, repositories, roles, secrets, users
from inspect_app.errors import InspectError
from inspect_app.models import ImageStatus
from inspect_app.ui.formatting import relative_time
from inspect_app.ui.layout import NATIVE_SELECT, page_frame, section
from inspect_app.ui.pages.settings_agents import agent_sections
from inspect_app.ui.state import Actions, AppState, connected


@dataclasses.dataclass
class RepoRow:
    id: str
    name: str
    url: str
    branch: str
    prebuild: bool
    image: str  # "" (never built), or "ready · abc1234 · 12.3 s · 5 min ago", "failed · …", "building"
    image_status: str
    image_log: str  # the setup log's tail of the newest build
    keywords: str  # comma-separated aliases the Slack bot routes by
    egress: str  # comma-separated hosts its sandboxes may reach beyond the installation's list


def _image_line(summary: prebuild.ImageSummary | None) -> tuple[str, str, str]:
    if summary is None:
        return "", "", ""
    parts = [summary.status]
    if summary.commit:
        parts.append(summary.commit[:7])
    if summary.duration_s:
        parts.append(f"{summary.duration_s:.1f} s")
    if summary.built_at:
        parts.append(relative_time(summary.built_at))
    return " · ".join(parts), summary.status, summary.log_tail


@dataclasses.dataclass
class GitHubRow:
    full_name: str
    description: str
    registered: bool


@dataclasses.dataclass
class SecretRow:
    key: str
    scope: str
    repo_id: str  # "" for a global secret


@dataclasses.dataclass
class TokenRow:
    id: str
    name: str
    prefix: str
    created: str
    status: str


# Provider keys are stored as global secrets under the names the providers' SDKs read.
PROVIDER_KEYS = {"Anthropic": "ANTHROPIC_API_KEY", "OpenAI": "OPENAI_API_KEY", "OpenRouter": "OPENROUTER_API_KEY"}


BUILD_POLL_S = 2.0  # how often a tab watching an image build reads its status
BUILD_WATCH_TICKS = 900  # at most 30 minutes of it (a build's own timeout is shorter)
BUILD_START_TICKS = 15  # a build not seen within 30 s was refused or finished before the first look


def _repo_rows() -> list[RepoRow]:
    """The repositories with their newest image (blocking: database reads)."""
    engine = services.current().engine
    latest = prebuild.latest_images(engine)
    return [
        RepoRow(
            str(r.id),
            r.name,
            r.url,
            r.default_branch,
            r.prebuild,
            *_image_line(latest.get(r.id or 0)),
            ", ".join(r.keywords or []),
            ", ".join(r.egress_hosts or []),
        )
        for r in repositories.list_all(engine)
    ]


class SettingsState(Actions, AppState):
    repos: list[RepoRow] = []
    secrets: list[SecretRow] = []
    tokens: list[TokenRow] = []
    default_model: str = ""
    configured_model: str = ""  # from the environment: shown beside the default set here
    github_app: bool = False  # a GitHub App is configured: its repositories can be added
    github_repos: list[GitHubRow] = []
    github_loaded: bool = False
    new_token: str = ""  # shown once, right after creation
    is_admin: bool = False  # shows the admin-only sections (control/roles checks every change anyway)
    _watching_builds: bool = False

    def _load(self) -> None:
        engine = services.current().engine
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
        self.is_admin = roles.is_admin(engine, self.user_id)
        if self.is_admin:
            self._load_admin()
        else:  # e.g. revoked while this tab was open: keep nothing it may no longer see
            self.repos, self.secrets, self.github_repos = [], [], []

    def _load_admin(self) -> None:
        engine = services.current().engine
        self.repos = _repo_rows()
        self.secrets = [
            SecretRow(key, scope, str(repo_id or ""))
            for key, scope, repo_id in secrets.listing(engine, actor_id=self.user_id)
        ]
        self.configured_model = services.current().settings.resolved_default_model
        self.github_app = services.current().github_app is not None
        self.default_model = instance.default_model(engine, self.configured_model)

    @rx.event
    async def save_keywords(self, repo_id: str, value: str) -> None:
        words = [w for w in value.split(",") if w.strip()]
        await self._do(
            lambda: repositories.describe(
                services.current().engine, int(repo_id), actor_id=self.user_id, description=None, keywords=words
            ),
            "Keywords saved",
        )

    @rx.event
    async def save_egress(self, repo_id: str, value: str) -> None:
        hosts = [h for h in value.split(",") if h.strip()]
        engine = services.current().engine
        await self._do(
            lambda: repositories.set_egress_hosts(engine, int(repo_id), hosts, actor_id=self.user_id),
            "Egress hosts saved: sandboxes started from now on may reach them",
        )

    @rx.event
    async def rebuild(self, repo_id: str) -> rx.event.EventSpec | None:
        try:
            await services.current().prebuilds.rebuild_now(int(repo_id), actor_id=self.user_id)
        except InspectError as exc:
            self.error, self.message = exc.message, ""
            return None
        self.error, self.message = "", "Building the image in the background: its status shows here as it goes."
        await asyncio.to_thread(self._load)
        return SettingsState.watch_builds

    @rx.event(background=True)
    async def watch_builds(self) -> None:
        """While an image builds, show its status as it changes (one loop per tab, bounded, ended
        when the tab closes)."""
        async with self:
            if self._watching_builds:
                return
            self._watching_builds, client = True, self.router.session.client_token
        try:
            seen = False  # a build may register a moment after it was asked for
            for tick in range(BUILD_WATCH_TICKS):
                await asyncio.sleep(BUILD_POLL_S)
                if not connected(client):
                    return
                rows = await asyncio.to_thread(_repo_rows)  # outside the tab's lock: its other events go on
                async with self:
                    self.repos = rows
                building = any(r.image_status == ImageStatus.BUILDING for r in rows)
                seen |= building
                if not building and (seen or tick >= BUILD_START_TICKS):
                    return
        finally:
            async with self:
                self._watching_builds = False

    @rx.event
    async def load_github(self) -> None:
        s = services.current()
        try:
            found = await asyncio.to_thread(repositories.github_choices, s.engine, s.github_app, actor_id=self.user_id)
        except InspectError as exc:
            self.error, self.message = exc.message, ""
            return
        self.github_repos = [GitHubRow(info.full_name, info.description, registered) for info, registered in found]
        self.github_loaded = True

    @rx.event
    async def add_github_repo(self, full_name: str) -> None:
        s = services.current()
        await self._do(
            lambda: repositories.register_github(
                s.engine, s.github_app, full_name, actor_id=self.user_id, web_url=s.settings.github_web_url
            ),
            f"Added {full_name}",
        )
        await self.load_github()

    @rx.event
    async def add_repo(self, form: dict) -> None:
        url = str(form.get("url", ""))
        await self._do(
            lambda: repositories.register(
                services.current().engine,
                url,
                actor_id=self.user_id,
                protected=services.current().settings.protected_paths,
            ),
            f"Added {url}",
        )

    @rx.event
    async def toggle_prebuild(self, repo_id: str, enabled: bool) -> None:
        await self._do(
            lambda: repositories.set_prebuild(services.current().engine, int(repo_id), enabled, actor_id=self.user_id),
            "Prebuild updated",
        )

    @rx.event
    async def put_secret(self, form: dict) -> None:
        key, value = str(form.get("key", "")).strip(), str(form.get("value", ""))
        scope = str(form.get("scope", "") or "global")
        repo_id = None if scope == "global" else int(scope)
        s = services.current()
        await self._do(
            lambda: secrets.put(s.engine, s.cipher, key, value, actor_id=self.user_id, repository_id=repo_id),
            f"Saved secret {key}",
        )

    @rx.event
    async def delete_secret(self, key: str, repo_id: str) -> None:
        await self._do(
            lambda: secrets.delete(
                services.current().engine,
                key,
                actor_id=self.user_id,
                repository_id=int(repo_id) if repo_id else None,
            ),
            f"Deleted secret {key}",
        )

    @rx.event
    async def save_model(self, form: dict) -> None:
        model = str(form.get("model", ""))
        await self._do(
            lambda: instance.set_default_model(services.current().engine, model, actor_id=self.user_id),
            "New sessions use this model",
        )

    @rx.event
    async def save_provider_key(self, form: dict) -> None:
        name, value = str(form.get("provider", "")), str(form.get("value", ""))
        if name not in PROVIDER_KEYS.values():
            self.error, self.message = "Pick a provider.", ""
            return
        if not value.strip():
            self.error, self.message = "Paste the key first.", ""
            return
        s = services.current()
        await self._do(
            lambda: secrets.put(s.engine, s.cipher, name, value.strip(), actor_id=self.user_id), f"Saved {name}"
        )

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


def repo_row(row: RepoRow) -> rx.Component:
    status_color = rx.cond(row.image_status == "ready", "green", rx.cond(row.image_status == "failed", "red", "gray"))
    return rx.vstack(
        rx.hstack(
            rx.vstack(
                rx.text(row.name, weight="medium"),
                rx.text(row.url, " @ ", row.branch, size="1", color_scheme="gray"),
                spacing="0",
                flex="1",
            ),
            rx.cond(
                row.image != "",
                rx.badge(rx.icon("package", size=12), row.image, color_scheme=status_color, class_name="image-status"),
            ),
            rx.input(
                default_value=row.keywords,
                placeholder="Slack keywords, comma-separated",
                on_blur=lambda v: SettingsState.save_keywords(row.id, v),
                size="1",
                width="14rem",
                class_name="repo-keywords",
            ),
            rx.input(
                default_value=row.egress,
                placeholder="Extra egress hosts, comma-separated",
                title="Hosts this repository's sandboxes may reach beyond the installation's list "
                "(e.g. its own package registry; .example.com allows its subdomains)",
                on_blur=lambda v: SettingsState.save_egress(row.id, v),
                size="1",
                width="16rem",
                class_name="repo-egress",
            ),
            rx.text("Prebuild", size="1"),
            rx.switch(checked=row.prebuild, on_change=lambda v: SettingsState.toggle_prebuild(row.id, v)),
            rx.button(
                "Rebuild now", size="1", variant="soft", on_click=SettingsState.rebuild(row.id), class_name="rebuild"
            ),
            width="100%",
            align="center",
            wrap="wrap",
        ),
        rx.cond(
            (row.image_status == "failed") & (row.image_log != ""),
            rx.el.details(
                rx.el.summary("Why the last build failed", style={"cursor": "pointer", "font-size": "0.8rem"}),
                rx.code_block(row.image_log, language="log", wrap_long_lines=True),
                width="100%",
            ),
        ),
        width="100%",
        spacing="1",
        class_name="repo-row",
    )


def github_row(row: GitHubRow) -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.text(row.full_name, weight="medium"),
            rx.text(row.description, size="1", color_scheme="gray"),
            spacing="0",
            flex="1",
        ),
        rx.cond(
            row.registered,
            rx.badge("added", color_scheme="green"),
            rx.button("Add", size="1", on_click=SettingsState.add_github_repo(row.full_name)),
        ),
        width="100%",
        align="center",
        class_name="github-row",
    )


def github_section() -> rx.Component:
    s = SettingsState
    return rx.cond(
        s.github_app,
        rx.vstack(
            rx.hstack(
                rx.text("From the GitHub App", weight="medium", size="2"),
                rx.button("Load from GitHub", size="1", variant="soft", on_click=s.load_github, id="github-load"),
                align="center",
            ),
            rx.cond(
                s.github_loaded & (s.github_repos.length() == 0),
                rx.text("The App is not installed on any repository yet.", size="2", color_scheme="gray"),
            ),
            rx.vstack(rx.foreach(s.github_repos, github_row), width="100%", id="github-repos"),
            width="100%",
        ),
        rx.text(
            "Set INSPECT_GITHUB_APP_ID and INSPECT_GITHUB_APP_PRIVATE_KEY to add GitHub repositories here.",
            size="1",
            color_scheme="gray",
        ),
    )


def secret_row(row: SecretRow) -> rx.Component:
    return rx.hstack(
        rx.code(row.key),
        rx.text(row.scope, size="1", color_scheme="gray"),
        rx.spacer(),
        rx.button(
            "Delete",
            size="1",
            variant="ghost",
            color_scheme="red",
            on_click=SettingsState.delete_secret(row.key, row.repo_id),
        ),
        width="100%",
        align="center",
        class_name="secret-row",
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


def admin_sections() -> rx.Component:
    """Repositories, secrets and models: shown to admins only."""
    s = SettingsState
    return rx.fragment(
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
            github_section(),
        ),
        section(
            "Secrets",
            rx.text(
                "Values are write-only: they go into sandboxes, never back to a browser.", size="2", color_scheme="gray"
            ),
            rx.vstack(rx.foreach(s.secrets, secret_row), width="100%", id="secret-list"),
            rx.form(
                rx.hstack(
                    rx.input(name="key", placeholder="NAME", id="secret-key"),
                    rx.input(name="value", placeholder="value", type="password", flex="1", id="secret-value"),
                    rx.el.select(
                        rx.el.option("All repositories", value="global"),
                        rx.foreach(s.repos, lambda r: rx.el.option(r.name, value=r.id)),
                        name="scope",
                        id="secret-scope",
                        style=NATIVE_SELECT,
                    ),
                    rx.button("Save", type="submit", id="secret-save"),
                    width="100%",
                    wrap="wrap",
                ),
                on_submit=s.put_secret,
                reset_on_submit=True,
            ),
        ),
        section(
            "Models",
            rx.text("New sessions use ", rx.code(s.default_model, id="default-model"), "."),
            rx.form(
                rx.hstack(
                    rx.input(
                        name="model",
                        placeholder="provider/model, e.g. anthropic/claude-sonnet-4-5",
                        flex="1",
                        id="model-input",
                    ),
                    rx.button("Use this model", type="submit", id="model-save"),
                    width="100%",
                ),
                on_submit=s.save_model,
                reset_on_submit=True,
            ),
            rx.text("Configured default: ", rx.code(s.configured_model), size="1", color_scheme="gray"),
            rx.form(
                rx.hstack(
                    rx.el.select(
                        *[rx.el.option(label, value=env) for label, env in PROVIDER_KEYS.items()],
                        name="provider",
                        id="provider-select",
                        style=NATIVE_SELECT,
                    ),
                    rx.input(
                        name="value", placeholder="provider API key", type="password", flex="1", id="provider-key"
                    ),
                    rx.button("Save key", type="submit", id="provider-save"),
                    width="100%",
                ),
                on_submit=s.save_provider_key,
                reset_on_submit=True,
            ),
            rx.text(
                "Provider keys are kept as encrypted secrets and reach sandboxes only.", size="1", color_scheme="gray"
            ),
        ),
        agent_sections(),
    )


def settings_page() -> rx.Component:
    s = SettingsState
    return page_frame(
        rx.heading("Settings", size="7"),
        rx.cond(s.error != "", rx.callout(s.error, icon="triangle_alert", color_scheme="red", id="settings-error")),
        rx.cond(s.message != "", rx.callout(s.message, icon="check", color_scheme="green")),
        rx.cond(
            s.is_admin,
            admin_sections(),
            rx.callout(
                "Repositories, secrets, provider keys and the default model are managed by an admin.",
                icon="info",
                color_scheme="gray",
                id="settings-not-admin",
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
