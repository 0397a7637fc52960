"""Usage figures for the Stats page: sessions per day, pull requests, active and prompting people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import col, func, select

from inspect_app.db import session_scope
from inspect_app.models import Artifact, Message, Sandbox, Session, utcnow

HUMANS_WINDOW = timedelta(minutes=5)
ACTIVE_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Stats:
    sessions_per_day: list[tuple[str, int]]  # (YYYY-MM-DD, count), oldest first, zeros included
    prs_opened: int
    prs_merged: int
    merge_rate: float  # merged / opened, 0..1
    active_users: int  # people who prompted in the last 7 days
    humans_prompting: int  # people who prompted in the last 5 minutes


def sessions_per_day(days: list[date], created: list[date]) -> list[tuple[str, int]]:
    """Pure: count creation dates into the given days (missing days count zero)."""
    counts = dict.fromkeys(days, 0)
    for day in created:
        if day in counts:
            counts[day] += 1
    return [(day.isoformat(), counts[day]) for day in days]


def collect(engine: sa.Engine, *, days: int = 14) -> Stats:
    now = utcnow()
    first = (now - timedelta(days=days - 1)).date()
    window = [first + timedelta(days=i) for i in range(days)]
    with session_scope(engine) as db:
        created = [
            c.date()
            for c in db.exec(select(Session.created_at).where(Session.created_at >= now - timedelta(days=days))).all()
        ]
        prs = db.exec(select(Artifact.state, func.count()).where(Artifact.type == "pr").group_by(Artifact.state)).all()
        active = db.exec(
            select(func.count(func.distinct(Message.author_id))).where(Message.created_at >= now - ACTIVE_WINDOW)
        ).one()
        humans = db.exec(
            select(func.count(func.distinct(Message.author_id))).where(col(Message.created_at) >= now - HUMANS_WINDOW)
        ).one()
    by_state = {state: count for state, count in prs}
    opened = sum(by_state.values())
    merged = by_state.get("merged", 0)
    return Stats(
        sessions_per_day=sessions_per_day(window, created),
        prs_opened=opened,
        prs_merged=merged,
        merge_rate=(merged / opened) if opened else 0.0,
        active_users=int(active),
        humans_prompting=int(humans),
    )


@dataclass(frozen=True)
class Gauges:
    """What ``/metrics`` reports as it is now (one transaction)."""

    sessions: dict[str, int]  # by status, archived ones aside
    sandboxes: dict[str, int]  # the live ones ``replica_id`` serves, by status
    prompts: dict[str, int]  # pending and processing, installation-wide


def gauges(engine: sa.Engine, replica_id: str) -> Gauges:
    live = ("spawning", "connected", "ready")
    with session_scope(engine) as db:
        sessions = db.exec(
            select(Session.status, func.count()).where(Session.archived == sa.false()).group_by(Session.status)
        ).all()
        sandboxes = db.exec(
            select(Sandbox.status, func.count())
            .where(Sandbox.replica_id == replica_id, col(Sandbox.status).in_(live))
            .group_by(Sandbox.status)
        ).all()
        prompts = db.exec(
            select(Message.status, func.count())
            .where(col(Message.status).in_(("pending", "processing")))
            .group_by(Message.status)
        ).all()
    return Gauges(
        sessions=dict(sessions),
        sandboxes={status: 0 for status in live} | dict(sandboxes),
        prompts={"pending": 0, "processing": 0} | dict(prompts),
    )
