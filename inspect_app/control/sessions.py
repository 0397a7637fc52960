"""Sessions: listing and reading them as plain summaries for the UI and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select

from inspect_app.db import session_scope
from inspect_app.models import Repository, Session, User

MAX_PAGE = 100


@dataclass(frozen=True)
class SessionSummary:
    id: str
    title: str
    status: str
    repository: str
    base_branch: str
    creator: str
    source: str
    archived: bool
    updated_at: datetime


def list_sessions(
    engine: sa.Engine,
    *,
    creator_id: int | None = None,
    status: str | None = None,
    archived: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[SessionSummary]:
    """Sessions, newest activity first. ``creator_id`` narrows to one person's ("mine")."""
    limit = max(1, min(limit, MAX_PAGE))
    query = (
        select(Session, Repository.name, User.name)
        .join(Repository, Repository.id == Session.repository_id)
        .join(User, User.id == Session.creator_id)
        .where(Session.archived == archived)
        .order_by(Session.updated_at.desc(), Session.id)  # type: ignore[attr-defined]
        .limit(limit)
        .offset(max(0, offset))
    )
    if creator_id is not None:
        query = query.where(Session.creator_id == creator_id)
    if status:
        query = query.where(Session.status == status)
    with session_scope(engine) as db:
        return [
            SessionSummary(
                id=row.id,
                title=row.title or "Untitled session",
                status=row.status,
                repository=repo_name,
                base_branch=row.base_branch,
                creator=creator_name,
                source=row.source,
                archived=row.archived,
                updated_at=row.updated_at,
            )
            for row, repo_name, creator_name in db.exec(query).all()
        ]
