"""Settings' state: what the page shows (repositories and their images, secrets, the default model,
API tokens) and what its forms do, each through ``control/`` (which checks roles again).
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
