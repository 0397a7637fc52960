"""Settings, admins' part for agents: MCP servers and skills (``control/agent_extensions.py``) and
people's monthly budgets (``control/data/usage.py``). Each change goes through the control
functions, which check the admin role themselves."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import reflex as rx

from inspect_app import services
from inspect_app.control import costs
from inspect_app.control.data import agent_extensions, repositories, roles, usage
from inspect_app.errors import InvalidInput
from inspect_app.ui.layout import NATIVE_SELECT, section
from inspect_app.ui.state import Actions, AppState

EXAMPLE = '{"command": ["python3", "tools/mcp.py"], "environment": {"TOKEN": {"secret": "MY_SECRET"}}}'


@dataclasses.dataclass
class ExtensionRow:
    id: str
    name: str
    kind: str
    scope: str
    summary: str


@dataclasses.dataclass
class BudgetRow:
    user_id: str
    name: str
    budget: str
    spent: str


class AgentSettingsState(Actions, AppState):
    extensions: list[ExtensionRow] = []
    budgets: list[BudgetRow] = []
    repos: list[tuple[str, str]] = []  # (id, name) for the scope choice

    def _load(self) -> None:
        engine = services.current().engine
        if not roles.is_admin(engine, self.user_id):  # people's spending is for admins only
            self.extensions, self.budgets, self.repos = [], [], []
            return
        names = {r.id: r.name for r in repositories.list_all(engine)}
        self.repos = [(str(i), n) for i, n in names.items()]
        self.extensions = [
            ExtensionRow(
                str(e.id),
                e.name,
                e.kind,
                names.get(e.repository_id or 0, "?") if e.repository_id else "all repositories",
                json.dumps(e.config)[:160],
            )
            for e in agent_extensions.listing(engine)
        ]
        self.budgets = [
            BudgetRow(
                str(b.user_id),
                b.name,
                "none" if b.monthly_budget_cents is None else costs.dollars(Decimal(b.monthly_budget_cents) / 100),
                costs.dollars(b.spent),
            )
            for b in usage.budgets(engine)
        ]

    @rx.event
    async def add_extension(self, form: dict) -> None:
        kind, name = str(form.get("kind", "")), str(form.get("name", "")).strip()
        scope = str(form.get("scope", "") or "global")
        text = str(form.get("config", ""))

        def add() -> None:
            try:
                config = {"content": text} if kind == "skill" else json.loads(text or "{}")
            except ValueError as exc:
                raise InvalidInput(f"the config is not JSON: {exc}") from None
            agent_extensions.add(
                services.current().engine,
                kind=kind,
                name=name,
                config=config if isinstance(config, dict) else {},
                repository_id=None if scope == "global" else int(scope),
                actor_id=self.user_id,
            )

        await self._do(add, f"Added {name}")

    @rx.event
    async def delete_extension(self, extension_id: str) -> None:
        engine = services.current().engine
        await self._do(lambda: agent_extensions.delete(engine, int(extension_id), actor_id=self.user_id), "Deleted")

    @rx.event
    async def set_budget(self, form: dict) -> None:
        user_id, value = int(str(form.get("user") or 0)), str(form.get("monthly", "")).strip()

        def save() -> None:
            try:
                dollars = float(value) if value else None
            except ValueError:
                raise InvalidInput("a budget is a number of dollars, or empty for no limit") from None
            usage.set_budget(services.current().engine, user_id, dollars, actor_id=self.user_id)

        await self._do(save, "Budget saved")


def extension_row(row: ExtensionRow) -> rx.Component:
    s = AgentSettingsState
    return rx.hstack(
        rx.code(row.name),
        rx.badge(row.kind, size="1"),
        rx.text(row.scope, size="1", color_scheme="gray"),
        rx.text(row.summary, size="1", color_scheme="gray", flex="1", overflow="hidden", white_space="nowrap"),
        rx.button("Delete", size="1", variant="ghost", color_scheme="red", on_click=s.delete_extension(row.id)),
        width="100%",
        align="center",
        class_name="extension-row",
    )


def budget_row(row: BudgetRow) -> rx.Component:
    return rx.hstack(
        rx.text(row.name, flex="1"),
        rx.text("budget ", row.budget, size="1"),
        rx.text("spent this month ", row.spent, size="1", color_scheme="gray"),
        width="100%",
        class_name="budget-row",
    )


def agent_sections() -> rx.Component:
    """The two admin sections of Settings."""
    s = AgentSettingsState
    return rx.fragment(
        section(
            "MCP servers and skills",
            rx.text(
                "What agents get besides their own tools, for every repository or one. Secrets are named, "
                'never written: {"secret": "NAME"}.',
                size="2",
                color_scheme="gray",
            ),
            rx.vstack(rx.foreach(s.extensions, extension_row), width="100%", id="extension-list"),
            rx.form(
                rx.vstack(
                    rx.hstack(
                        rx.el.select(
                            rx.el.option("MCP server (local)", value="mcp_local"),
                            rx.el.option("MCP server (remote)", value="mcp_remote"),
                            rx.el.option("Skill", value="skill"),
                            name="kind",
                            id="extension-kind",
                            style=NATIVE_SELECT,
                        ),
                        rx.input(name="name", placeholder="name", id="extension-name"),
                        rx.el.select(
                            rx.el.option("All repositories", value="global"),
                            rx.foreach(s.repos, lambda r: rx.el.option(r[1], value=r[0])),
                            name="scope",
                            id="extension-scope",
                            style=NATIVE_SELECT,
                        ),
                        wrap="wrap",
                    ),
                    rx.text_area(
                        name="config", placeholder=f"{EXAMPLE}  (a skill: its instructions)", width="100%", rows="3"
                    ),
                    rx.button("Add", type="submit", id="extension-add"),
                    width="100%",
                ),
                on_submit=s.add_extension,
                reset_on_submit=True,
            ),
        ),
        section(
            "Budgets",
            rx.text(
                "A monthly budget per person: once spent, their new prompts are refused until the month ends.",
                size="2",
                color_scheme="gray",
            ),
            rx.vstack(rx.foreach(s.budgets, budget_row), width="100%", id="budget-list"),
            rx.form(
                rx.hstack(
                    rx.el.select(
                        rx.foreach(s.budgets, lambda b: rx.el.option(b.name, value=b.user_id)),
                        name="user",
                        id="budget-user",
                        style=NATIVE_SELECT,
                    ),
                    rx.input(name="monthly", placeholder="dollars a month (empty: no limit)", id="budget-amount"),
                    rx.button("Save", type="submit", id="budget-save"),
                ),
                on_submit=s.set_budget,
                reset_on_submit=True,
            ),
        ),
        rx.cond(
            s.error != "", rx.callout(s.error, icon="triangle_alert", color_scheme="red", id="agent-settings-error")
        ),
        rx.cond(s.message != "", rx.callout(s.message, icon="check", color_scheme="green")),
    )
