"""The answers the GitHub bot owes: one per prompt it queued, posted once that prompt has ended.

Any replica may post one; ``claim`` makes sure only one does (the row's ``answered_at`` is set by a
conditional UPDATE), so an answer survives the replica that took the mention, and is never doubled.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select

from inspect_app.db import session_scope
from inspect_app.models import BotReply, Message, MessageStatus, utcnow

OPEN = (MessageStatus.PENDING, MessageStatus.PROCESSING)


@dataclass(frozen=True)
class Owed:
    message_id: str
    session_id: str
    repository: str  # owner/name
    pull: int


def owe(engine: sa.Engine, owed: Owed) -> None:
    with session_scope(engine) as db:
        db.add(
            BotReply(message_id=owed.message_id, session_id=owed.session_id, repository=owed.repository, pull=owed.pull)
        )


def due(engine: sa.Engine, limit: int = 50) -> list[Owed]:
    """Answers owed for prompts that have ended, oldest first."""
    with session_scope(engine) as db:
        rows = db.exec(
            select(BotReply)
            .join(Message, col(Message.id) == col(BotReply.message_id))
            .where(col(BotReply.answered_at).is_(None), col(Message.status).not_in(OPEN))
            .order_by(col(BotReply.created_at))
            .limit(limit)
        ).all()
        return [Owed(r.message_id, r.session_id, r.repository, r.pull) for r in rows]


def claim(engine: sa.Engine, message_id: str) -> bool:
    """Whether this caller is the one to post the answer (once, across replicas)."""
    with session_scope(engine) as db:
        done = db.exec(
            sa.update(BotReply)
            .where(col(BotReply.message_id) == message_id, col(BotReply.answered_at).is_(None))
            .values(answered_at=utcnow())
        )
        return done.rowcount == 1
