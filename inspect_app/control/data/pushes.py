"""The commits Inspect pushed to a repository: what its own pushes caused (a check failing on one of
them, the push event itself) must not start automations again (no fix -> push -> fail -> fix loop)."""

from __future__ import annotations

import sqlalchemy as sa

from inspect_app.db import session_scope
from inspect_app.models import PushedCommit


def record(engine: sa.Engine, repository_id: int, sha: str, session_id: str | None) -> None:
    """Remember a pushed commit (once: the same commit pushed again changes nothing)."""
    if not sha:
        return
    with session_scope(engine) as db:
        if db.get(PushedCommit, (repository_id, sha)) is None:
            db.add(PushedCommit(repository_id=repository_id, sha=sha, session_id=session_id))


def ours(engine: sa.Engine, repository_id: int, sha: str) -> bool:
    """Whether Inspect pushed this commit to the repository."""
    if not sha:
        return False
    with session_scope(engine) as db:
        return db.get(PushedCommit, (repository_id, sha)) is not None
