"""Replicas: the server processes of one installation, and which of them serves each live sandbox.

A replica beats (``beat``) every few seconds; one whose beat is older than the timeout is gone, and
whatever it served is claimed by the first peer that looks (``claim_orphans``), in one statement so
two peers never both take the same sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from inspect_app.control.data.sandboxes import LIVE
from inspect_app.db import session_scope
from inspect_app.models import Replica, Sandbox, SandboxStatus, utcnow


def beat(engine: sa.Engine, replica_id: str, *, starting: bool = False) -> None:
    """``replica_id`` is alive now (registered on its first beat; ``starting`` marks a new start)."""
    now = utcnow()
    with session_scope(engine) as db:
        row = db.get(Replica, replica_id)
        if row is None:
            db.add(Replica(id=replica_id, started_at=now, heartbeat_at=now))
            try:
                db.flush()
            except sa.exc.IntegrityError:  # registered by itself concurrently: can only be a restart
                db.rollback()
            return
        row.heartbeat_at = now
        if starting:
            row.started_at = now


def alive(engine: sa.Engine, timeout_s: float) -> set[str]:
    """The replicas whose last beat is within ``timeout_s``."""
    since = utcnow() - timedelta(seconds=timeout_s)
    with session_scope(engine) as db:
        return set(db.exec(select(Replica.id).where(col(Replica.heartbeat_at) >= since)).all())


def claim_orphans(engine: sa.Engine, replica_id: str, timeout_s: float, *, starting: bool = False) -> list[Sandbox]:
    """Take over the live sandboxes no living replica serves (their replica stopped beating, or a
    server from before replicas) and, ``starting``, those ``replica_id`` served before it
    restarted. Returns them."""
    living = alive(engine, timeout_s) | {replica_id}
    if starting:
        living.discard(replica_id)
    with session_scope(engine) as db:
        orphaned = sa.and_(col(Sandbox.status).in_(LIVE), col(Sandbox.replica_id).not_in(living))
        ids = [
            row[0]
            for row in db.exec(
                sa.update(Sandbox)
                .where(orphaned)
                .values(replica_id=replica_id, owner_epoch=col(Sandbox.owner_epoch) + 1)  # a takeover
                .returning(col(Sandbox.id))
            )
        ]
        if not ids:
            return []
        return list(db.exec(select(Sandbox).where(col(Sandbox.id).in_(ids))).all())


def served(engine: sa.Engine, timeout_s: float) -> set[str]:
    """The live sandboxes a living replica serves (what an adoption must leave alone)."""
    living = alive(engine, timeout_s)
    with session_scope(engine) as db:
        return set(
            db.exec(select(Sandbox.id).where(col(Sandbox.status).in_(LIVE), col(Sandbox.replica_id).in_(living))).all()
        )


@dataclass(frozen=True)
class Serving:
    """Which living replica serves a session's live sandbox."""

    sandbox_id: str
    replica_id: str
    ready: bool  # the sandbox said it takes prompts


def serving(engine: sa.Engine, session_id: str, timeout_s: float) -> Serving | None:
    """The session's live sandbox and the replica serving it; None when it has none, or when that
    replica stopped beating (a peer adopts the sandbox soon)."""
    since = utcnow() - timedelta(seconds=timeout_s)
    with session_scope(engine) as db:
        row = db.exec(
            select(Sandbox.id, Sandbox.replica_id, Sandbox.status)
            .join(Replica, col(Replica.id) == col(Sandbox.replica_id))
            .where(
                Sandbox.session_id == session_id,
                col(Sandbox.status).in_(LIVE),
                col(Replica.heartbeat_at) >= since,
            )
            .order_by(col(Sandbox.created_at).desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    return Serving(sandbox_id=row[0], replica_id=row[1], ready=row[2] == SandboxStatus.READY)
