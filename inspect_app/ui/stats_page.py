"""Stats: sessions per day, pull requests and merge rate, active people, humans prompting now."""

from __future__ import annotations

import asyncio

import reflex as rx

from inspect_app import services
from inspect_app.control.data import stats
from inspect_app.ui.layout import page_frame
from inspect_app.ui.state import AppState


class StatsState(AppState):
    per_day: list[dict[str, int | str]] = []
    prs_opened: int = 0
    prs_merged: int = 0
    merge_rate: str = "n/a"
    active_users: int = 0
    humans_prompting: int = 0

    @rx.event
    async def load(self) -> None:
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
    )
