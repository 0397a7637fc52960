from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from inspect_app.control.data import prompts, sessions, stats
from inspect_app.db import session_scope
from inspect_app.models import Artifact, Repository, User


def test_sessions_per_day_fills_missing_days() -> None:
    days = [date(2026, 11, 29), date(2026, 11, 30), date(2026, 12, 1)]
    got = stats.sessions_per_day(days, [date(2026, 11, 29), date(2026, 12, 1), date(2026, 12, 1), date(2026, 1, 1)])
    assert got == [("2026-11-29", 1), ("2026-11-30", 0), ("2026-12-01", 2)]


def test_collect(engine: sa.Engine) -> None:
    with session_scope(engine) as db:
        a, b = User(name="A"), User(name="B")
        repo = Repository(url="/r", name="r")
        db.add_all([a, b, repo])
        db.flush()
        ids = (a.id, b.id, repo.id)
    s = sessions.create(engine, repository_id=ids[2], creator_id=ids[0])
    prompts.enqueue(engine, session_id=s.id, author_id=ids[0], content="x")
    prompts.enqueue(engine, session_id=s.id, author_id=ids[1], content="y")
    with session_scope(engine) as db:
        db.add_all(
            [Artifact(session_id=s.id, type="pr", state="merged"), Artifact(session_id=s.id, type="pr", state="open")]
        )
    figures = stats.collect(engine)
    assert figures.sessions_per_day[-1][1] == 1
    assert (figures.prs_opened, figures.prs_merged, figures.merge_rate) == (2, 1, 0.5)
    assert figures.active_users == 2 and figures.humans_prompting == 2
