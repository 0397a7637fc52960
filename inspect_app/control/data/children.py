"""Child sessions as stored: ordinary sessions with a ``parent_id`` (one level deep)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, func, select

from inspect_app.db import session_scope
from inspect_app.models import Artifact, Message, MessageStatus, Repository, Session


@dataclass(frozen=True)
class ChildRow:
    """What a parent (its agent, its page) sees of a child."""

    id: str
    title: str
    repository: str
    status: str  # working | done | failed | stopped | waiting (its newest prompt's outcome)
    prompt_id: str  # its newest prompt ("" before one)
    pr_url: str


_STATUS = {
    MessageStatus.PENDING: "working",
    MessageStatus.PROCESSING: "working",
    MessageStatus.COMPLETED: "done",
    MessageStatus.FAILED: "failed",
    MessageStatus.CANCELLED: "stopped",
}


def count(engine: sa.Engine, parent_id: str) -> int:
    with session_scope(engine) as db:
        return db.exec(select(func.count()).where(Session.parent_id == parent_id)).one()


def ids(engine: sa.Engine, parent_id: str) -> list[str]:
    with session_scope(engine) as db:
        return list(
            db.exec(select(Session.id).where(Session.parent_id == parent_id).order_by(col(Session.created_at))).all()
        )


def row(engine: sa.Engine, child_id: str) -> ChildRow | None:
    """The child as its parent sees it; None when there is no such session or it is no child."""
    with session_scope(engine) as db:
        child = db.get(Session, child_id)
        if child is None or child.parent_id is None:
            return None
        repository = db.get(Repository, child.repository_id)
        newest = db.exec(
            select(Message).where(Message.session_id == child_id).order_by(col(Message.created_at).desc()).limit(1)
        ).first()
        pr = db.exec(
            select(Artifact.url)
            .where(Artifact.session_id == child_id, col(Artifact.type).in_(("pr", "branch")))  # not a screenshot
            .order_by(col(Artifact.id).desc())
            .limit(1)
        ).first()
        return ChildRow(
            id=child.id,
            title=child.title,
            repository=repository.name if repository is not None else "",
            status=_STATUS.get(MessageStatus(newest.status), "working") if newest is not None else "waiting",
            prompt_id=newest.id if newest is not None else "",
            pr_url=pr or "",
        )
