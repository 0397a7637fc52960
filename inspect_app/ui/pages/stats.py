"""Stats: sessions per day, pull requests and merge rate, active people, humans prompting now, and
what the agent cost (per person and repository, per merged pull request) over 7, 30 or 90 days."""

from __future__ import annotations

import asyncio

import reflex as rx

from inspect_app import services
from inspect_app.control import costs
from inspect_app.control.data import stats, usage
from inspect_app.ui.layout import page_frame
from inspect_app.ui.state import AppState


class StatsState(AppState):
    per_day: list[dict[str, int | str]] = []
    prs_opened: int = 0
    prs_merged: int = 0
    merge_rate: str = "n/a"
    active_users: int = 0
    humans_prompting: int = 0
    cost_days: str = "30"
    cost_total: str = ""
    cost_per_pr: str = "n/a"
    cost_unpriced: bool = False
    cost_by_person: list[dict[str, str]] = []
    cost_by_repository: list[dict[str, str]] = []

    @rx.event
    async def set_cost_days(self, value: str | list[str]) -> None:
        self.cost_days = value if isinstance(value, str) else value[0]
        await self._load_costs()

    async def _load_costs(self) -> None:
        found = await asyncio.to_thread(usage.stats, services.current().engine, int(self.cost_days))

        def rows(items: list[usage.CostRow]) -> list[dict[str, str]]:
            return [{"name": r.name, "cost": costs.dollars(r.dollars), "prompts": str(r.prompts)} for r in items]

        self.cost_total = costs.dollars(found.total)
        self.cost_per_pr = costs.dollars(found.per_merged_pr) if found.per_merged_pr is not None else "n/a"
        self.cost_unpriced = found.unpriced
        self.cost_by_person, self.cost_by_repository = rows(found.by_person), rows(found.by_repository)

    @rx.event
    async def load(self) -> None:
        await self._load_costs()
        figures = await asyncio.to_thread(stats.collect, services.current().engine)
        self.per_day = [{"day": day[5:], "sessions": count} for day, count in figures.sessions_per_day]
        self.prs_opened, self.prs_merged = figures.prs_opened, figures.prs_merged
        self.merge_rate = f"{figures.merge_rate:.0%}" if figures.prs_opened else "n/a"
        self.active_users, self.humans_prompting = figures.active_users, figures.humans_prompting


def figure(label: str, value: rx.Var | int | str) -> rx.Component:  # a state var (typed as its value)
    return rx.card(
        rx.vstack(rx.text(label, size="2", color_scheme="gray"), rx.heading(value, size="7")),
        flex="1",
        min_width="9rem",
    )


def cost_table(title: str, rows: rx.Var | list[dict[str, str]], table_id: str) -> rx.Component:  # a state var
    return rx.vstack(
        rx.text(title, weight="bold", size="2"),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("Name"),
                    rx.table.column_header_cell("Prompts"),
                    rx.table.column_header_cell("Cost"),
                )
            ),
            rx.table.body(
                rx.foreach(
                    rows,
                    lambda r: rx.table.row(
                        rx.table.cell(r["name"]), rx.table.cell(r["prompts"]), rx.table.cell(r["cost"])
                    ),
                )
            ),
            size="1",
            width="100%",
            id=table_id,
        ),
        flex="1",
        min_width="16rem",
    )


def costs_card() -> rx.Component:
    s = StatsState
    return rx.card(
        rx.hstack(
            rx.heading("Cost", size="4"),
            rx.spacer(),
            rx.segmented_control.root(
                rx.segmented_control.item("7 days", value="7"),
                rx.segmented_control.item("30 days", value="30"),
                rx.segmented_control.item("90 days", value="90"),
                value=s.cost_days,
                on_change=s.set_cost_days,
                size="1",
                id="cost-days",
            ),
            width="100%",
            align="center",
        ),
        rx.flex(
            figure("Total", s.cost_total),
            figure("Per merged PR", s.cost_per_pr),
            wrap="wrap",
            gap="3",
            width="100%",
            id="cost-figures",
        ),
        rx.cond(
            s.cost_unpriced,
            rx.text("Some models have no price: their tokens count as $0 (Settings → prices).", size="1"),
        ),
        rx.flex(
            cost_table("By person", s.cost_by_person, "cost-by-person"),
            cost_table("By repository", s.cost_by_repository, "cost-by-repository"),
            wrap="wrap",
            gap="4",
            width="100%",
        ),
        width="100%",
        id="costs",
    )


def stats_page() -> rx.Component:
    s = StatsState
    return page_frame(
        rx.heading("Stats", size="7"),
        rx.flex(
            figure("Humans prompting (5 min)", s.humans_prompting),
            figure("Active people (7 days)", s.active_users),
            figure("PRs opened", s.prs_opened),
            figure("PRs merged", s.prs_merged),
            figure("Merge rate", s.merge_rate),
            wrap="wrap",
            gap="3",
            width="100%",
            id="stats-figures",
        ),
        rx.card(
            rx.heading("Sessions per day", size="4"),
            rx.recharts.bar_chart(
                rx.recharts.bar(data_key="sessions", fill=rx.color("indigo", 9)),
                rx.recharts.x_axis(data_key="day"),
                rx.recharts.y_axis(allow_decimals=False),
                rx.recharts.tooltip(),
                data=s.per_day,
                height=260,
                width="100%",
            ),
            width="100%",
            id="sessions-chart",
        ),
        costs_card(),
    )
