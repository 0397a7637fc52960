"""Automations: the list (status, last run, why one paused), a form with a preview of the prompt,
each one's run history, Pause / Resume and Run now. The handlers call ``control/automations``,
which checks everything (who may change what, the schedule, the template) as it does for the API."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import reflex as rx

from inspect_app import services
from inspect_app.control.automations import github_events, manage, templates
from inspect_app.control.data import automations as data
from inspect_app.control.data import repositories
from inspect_app.errors import InspectError
from inspect_app.models import Automation, AutomationRun, User, utcnow
from inspect_app.ui import routes
from inspect_app.ui.formatting import http_url, relative_time
from inspect_app.ui.layout import NATIVE_SELECT, page_frame, section
from inspect_app.ui.state import AppState

EXAMPLE_TEMPLATE = "Look at the failing tests in {{ repository }} and fix the first one."
RUN_COLORS = {"succeeded": "green", "failed": "red", "running": "blue", "queued": "amber"}


@dataclasses.dataclass
class AutomationRow:
    id: str
    name: str
    trigger: str  # "every 0 9 * * 1-5 (Europe/Berlin)" or "webhook"
    status: str
    paused_reason: str
    last_run: str  # "#3 failed · 5 min ago", or ""


@dataclasses.dataclass
class RunRow:
    number: str
    status: str
    color: str
    reason: str
    when: str
    duration: str
    session_url: str
    pr_url: str  # the pull request (or branch) its session produced


@dataclasses.dataclass
class RepoChoice:
    id: str
    name: str


def _trigger_text(automation: Automation) -> str:
    config = automation.trigger_config
    if automation.trigger == "schedule":
        return f"every {config.get('cron', '')} ({config.get('timezone', 'UTC')})"
    if automation.trigger == "github":
        label = f" labelled {config['label']}" if config.get("label") else ""
        review = ", posts a review" if config.get("review") else ""
        return f"GitHub: {', '.join(config.get('events', []))}{label}{review}"
    if automation.trigger == "slack":
        return f"Slack {config.get('channel', '')}: messages holding “{config.get('contains', '')}”"
    return "webhook"


def _row(automation: Automation, last: AutomationRun | None) -> AutomationRow:
    last_text = f"#{last.number} {last.status} · {relative_time(last.created_at)}" if last is not None else ""
    return AutomationRow(
        str(automation.id),
        automation.name,
        _trigger_text(automation),
        automation.status,
        automation.paused_reason,
        last_text,
    )


def _run_row(run: AutomationRun, pr_url: str = "") -> RunRow:
    duration = ""
    if run.finished_at and run.started_at:
        duration = f"{(run.finished_at - run.started_at).total_seconds():.0f} s"
    return RunRow(
        str(run.number),
        run.status,
        RUN_COLORS.get(run.status, "gray"),
        run.reason,
        relative_time(run.created_at),
        duration,
        routes.session_url(run.session_id) if run.session_id else "",
        http_url(pr_url),
    )


class AutomationsState(AppState):
    automations: list[AutomationRow] = []
    repos: list[RepoChoice] = []
    runs: list[RunRow] = []
    runs_of: str = ""  # the automation whose history is shown
    preview: str = ""
    webhook_info: str = ""  # the new webhook's URL and secret, shown once
    trigger: str = "schedule"  # the form's: which of its fields show
    message: str = ""
    error: str = ""

    def _load(self) -> None:
        engine = services.current().engine
        last = data.last_runs(engine)
        self.automations = [_row(a, last.get(a.id or 0)) for a in data.list_all(engine)]
        self.repos = [RepoChoice(str(r.id), r.name) for r in repositories.list_all(engine)]
        if self.runs_of:
            found = data.runs(engine, int(self.runs_of))
            prs = data.pull_requests(engine, [r.session_id for r in found if r.session_id])
            self.runs = [_run_row(r, prs.get(r.session_id or "", "")) for r in found]

    def _actor(self) -> User:
        """The person using the page, read now (an admin's role counts as it is)."""
        return services.current().plane.user(self.user_id)

    @rx.event
    async def load(self) -> None:
        await asyncio.to_thread(self._load)

    async def _do(self, action: Any, done: str) -> bool:
        try:
            await asyncio.to_thread(action)
        except InspectError as exc:
            self.error, self.message = exc.message, ""
            return False
        self.error, self.message = "", done
        await asyncio.to_thread(self._load)
        return True

    @rx.event
    async def preview_template(self, form: dict) -> None:
        """The prompt as a run would send it (a schedule's payload: the fire time)."""
        try:
            sample = {"fired_at": utcnow().isoformat()}
            repo = next((r.name for r in self.repos if r.id == str(form.get("repository", ""))), "")
            text = str(form.get("template", ""))
            await asyncio.to_thread(templates.check, text)
            name = str(form.get("name", ""))
            # off the loop: a template is a person's code (its loops may take a while)
            self.preview = await asyncio.to_thread(
                templates.render, text, payload=sample, repository=repo, automation=name
            )
            self.error = ""
        except InspectError as exc:
            self.preview, self.error = "", exc.message

    @rx.event
    async def create(self, form: dict) -> None:
        trigger = str(form.get("trigger", "schedule"))
        try:
            filters = json.loads(str(form.get("filters", "") or "[]")) if trigger == "webhook" else None
        except json.JSONDecodeError as exc:
            self.error, self.message = f"filters: not JSON ({exc.msg})", ""
            return
        text = {name: str(form.get(name, "") or "").strip() for name in ("cron", "timezone", "events", "label")}
        github, slack = trigger == "github", trigger == "slack"
        spec = manage.Spec(
            name=str(form.get("name", "")),
            trigger=trigger,
            cron=text["cron"] if trigger == "schedule" else None,
            timezone=(text["timezone"] or "UTC") if trigger == "schedule" else None,
            filters=filters,
            events=[e.strip() for e in text["events"].split(",") if e.strip()] if github else None,
            label=text["label"] if github else None,
            review=bool(form.get("review")) if github else None,
            channel=str(form.get("channel", "")).strip() if slack else None,
            contains=str(form.get("contains", "")) if slack else None,
            repository_ids=[int(form["repository"])] if form.get("repository") else [],
            template=str(form.get("template", "")),
        )
        s = services.current()
        created: list[tuple[Automation, str | None]] = []

        def make() -> None:
            created.append(manage.create(s.engine, s.cipher, self._actor(), spec))

        if await self._do(make, f"Created {spec.name}"):
            automation, secret = created[0]
            self.preview = ""
            if secret:
                url = f"{s.settings.resolved_public_url}/api/automations/{automation.id}/webhook"
                self.webhook_info = f"POST {url} — secret (shown once): {secret}"

    @rx.event
    def pick_trigger(self, trigger: str) -> None:
        self.trigger = trigger

    @rx.event
    async def set_status(self, automation_id: str, status: str) -> None:
        engine = services.current().engine
        done = "Resumed" if status == "active" else "Paused"
        await self._do(
            lambda: manage.update(engine, self._actor(), int(automation_id), manage.Spec(status=status)), done
        )

    @rx.event
    async def run_now(self, automation_id: str) -> None:
        s = services.current()
        try:
            await asyncio.to_thread(lambda: manage.editable(s.engine, self._actor(), int(automation_id)))
            started = await s.automations.run_now(int(automation_id))
        except InspectError as exc:
            self.error, self.message = exc.message, ""
            return
        self.error = ""
        self.message = ", ".join(f"Run #{r.number}: {r.status}{f' ({r.reason})' if r.reason else ''}" for r in started)
        self.runs_of = automation_id
        await asyncio.to_thread(self._load)

    @rx.event
    async def show_runs(self, automation_id: str) -> None:
        self.runs_of = "" if self.runs_of == automation_id else automation_id
        self.runs = []
        await asyncio.to_thread(self._load)


def run_row(run: RunRow) -> rx.Component:
    return rx.hstack(
        rx.text("#", run.number, size="2", width="2.5rem"),
        rx.badge(run.status, color_scheme=run.color, class_name="run-status"),
        rx.text(run.reason, size="1", color_scheme="gray", flex="1", class_name="run-reason"),
        rx.text(run.duration, size="1", color_scheme="gray"),
        rx.text(run.when, size="1", color_scheme="gray"),
        rx.cond(run.session_url != "", rx.link("session", href=run.session_url, size="1")),
        rx.cond(run.pr_url != "", rx.link("pull request", href=run.pr_url, is_external=True, size="1")),
        width="100%",
        align="center",
        class_name="run-row",
    )


def automation_row(row: AutomationRow) -> rx.Component:
    s = AutomationsState
    paused = row.status == "paused"
    return rx.vstack(
        rx.hstack(
            rx.vstack(
                rx.text(row.name, weight="medium"),
                rx.text(row.trigger, size="1", color_scheme="gray"),
                spacing="0",
                flex="1",
            ),
            rx.text(row.last_run, size="1", color_scheme="gray", class_name="automation-last-run"),
            rx.badge(row.status, color_scheme=rx.cond(paused, "orange", "green"), class_name="automation-status"),
            rx.button("Run now", size="1", variant="soft", on_click=s.run_now(row.id), class_name="run-now"),
            rx.cond(
                paused,
                rx.button(
                    "Resume", size="1", variant="soft", on_click=s.set_status(row.id, "active"), class_name="resume"
                ),
                rx.button(
                    "Pause", size="1", variant="soft", on_click=s.set_status(row.id, "paused"), class_name="pause"
                ),
            ),
            rx.button("History", size="1", variant="ghost", on_click=s.show_runs(row.id), class_name="history"),
            width="100%",
            align="center",
            wrap="wrap",
        ),
        rx.cond(
            row.paused_reason != "",
            rx.callout(
                row.paused_reason, icon="circle-pause", color_scheme="orange", size="1", class_name="automation-reason"
            ),
        ),
        rx.cond(
            s.runs_of == row.id,
            rx.vstack(
                rx.foreach(s.runs, run_row),
                rx.cond(s.runs.length() == 0, rx.text("No runs yet.", size="1", color_scheme="gray")),
                width="100%",
                padding_left="1rem",
                id="automation-runs",
            ),
        ),
        width="100%",
        spacing="2",
        class_name="automation-row",
    )


def new_automation_form() -> rx.Component:
    s = AutomationsState
    return rx.form(
        rx.vstack(
            rx.hstack(
                rx.input(name="name", placeholder="Name, e.g. Morning triage", flex="1", id="automation-name"),
                rx.el.select(
                    rx.el.option("On a schedule", value="schedule"),
                    rx.el.option("On a webhook", value="webhook"),
                    rx.el.option("On GitHub events", value="github"),
                    rx.el.option("On a Slack message", value="slack"),
                    name="trigger",
                    value=s.trigger,
                    on_change=s.pick_trigger,
                    id="automation-trigger",
                    style=NATIVE_SELECT,
                ),
                rx.el.select(
                    rx.foreach(s.repos, lambda r: rx.el.option(r.name, value=r.id)),
                    name="repository",
                    id="automation-repo",
                    style=NATIVE_SELECT,
                ),
                width="100%",
                wrap="wrap",
            ),
            rx.match(
                s.trigger,
                (
                    "webhook",
                    rx.input(
                        name="filters",
                        placeholder='filters (JSON): [{"path": "status", "equals": "failed"}]',
                        width="100%",
                        id="automation-filters",
                    ),
                ),
                (
                    "github",
                    rx.hstack(
                        rx.input(
                            name="events",
                            default_value="check_run.failed",
                            placeholder="events: " + ", ".join(github_events.EVENTS),
                            flex="1",
                            id="automation-events",
                        ),
                        rx.input(name="label", placeholder="only this label", width="10rem", id="automation-label"),
                        rx.el.label(
                            rx.el.input(type="checkbox", name="review", id="automation-review"),
                            " post the answer as a review",
                            style={"font-size": "0.85rem"},
                        ),
                        width="100%",
                        align="center",
                        wrap="wrap",
                    ),
                ),
                (
                    "slack",
                    rx.hstack(
                        rx.input(name="channel", placeholder="channel id, e.g. C0123456789", id="automation-channel"),
                        rx.input(
                            name="contains",
                            placeholder="a phrase the message holds",
                            flex="1",
                            id="automation-contains",
                        ),
                        width="100%",
                        wrap="wrap",
                    ),
                ),
                rx.hstack(
                    rx.input(
                        name="cron",
                        default_value="0 9 * * 1-5",
                        placeholder="cron",
                        width="10rem",
                        id="automation-cron",
                    ),
                    rx.input(
                        name="timezone",
                        default_value="UTC",
                        placeholder="time zone",
                        width="12rem",
                        id="automation-timezone",
                    ),
                    width="100%",
                    wrap="wrap",
                ),
            ),
            rx.text_area(
                name="template",
                default_value=EXAMPLE_TEMPLATE,
                placeholder="The prompt (jinja2): {{ payload.field }}, {{ repository }}",
                rows="3",
                width="100%",
                id="automation-template",
            ),
            rx.hstack(
                rx.button("Create", type="submit", id="automation-create"),
                rx.button(
                    "Preview the prompt",
                    type="button",
                    variant="soft",
                    id="automation-preview",
                    # the form's current values, read by name: the preview needs no submit
                    on_click=rx.call_script(
                        "Object.fromEntries(new FormData(document.getElementById('automation-form')))",
                        callback=AutomationsState.preview_template,
                    ),
                ),
            ),
            rx.cond(s.preview != "", rx.code_block(s.preview, wrap_long_lines=True, id="automation-preview-text")),
            width="100%",
        ),
        on_submit=s.create,
        id="automation-form",
        width="100%",
    )


def automations_page() -> rx.Component:
    s = AutomationsState
    return page_frame(
        rx.heading("Automations", size="7"),
        rx.text(
            "Work that starts by itself (a schedule, a webhook, GitHub or Slack): each run is a session for you.",
            color_scheme="gray",
        ),
        rx.cond(s.error != "", rx.callout(s.error, icon="triangle-alert", color_scheme="red", id="automations-error")),
        rx.cond(s.message != "", rx.callout(s.message, icon="info", id="automations-message")),
        rx.cond(
            s.webhook_info != "",
            rx.callout(s.webhook_info, icon="key-round", color_scheme="amber", id="automation-secret"),
        ),
        section(
            "Automations",
            rx.cond(
                s.automations.length() == 0,
                rx.text("None yet: create one below.", size="2", color_scheme="gray", id="automations-empty"),
            ),
            rx.vstack(rx.foreach(s.automations, automation_row), width="100%", id="automation-list"),
        ),
        section("New automation", new_automation_form()),
    )
