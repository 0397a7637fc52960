"""A session's kept changes (``session_changes``): one row per session, replaced at each read."""

from __future__ import annotations

import sqlalchemy as sa

from inspect_app.db import session_scope
from inspect_app.models import SessionChanges, utcnow

MAX_KEPT = 1024 * 1024  # of a diff: the page shows files and their patches, not whole rewrites


def keep(engine: sa.Engine, session_id: str, diff: str) -> None:
    try:
        _keep(engine, session_id, diff)
    except sa.exc.IntegrityError:  # another replica kept the first copy meanwhile: replace it
        _keep(engine, session_id, diff)


def _keep(engine: sa.Engine, session_id: str, diff: str) -> None:
    with session_scope(engine) as db:
        row = db.get(SessionChanges, session_id)
        if row is None:
            row = SessionChanges(session_id=session_id)
            db.add(row)
        row.diff, row.taken_at = diff[:MAX_KEPT], utcnow()


def kept(engine: sa.Engine, session_id: str) -> str | None:
    with session_scope(engine) as db:
        row = db.get(SessionChanges, session_id)
        return None if row is None else row.diff
