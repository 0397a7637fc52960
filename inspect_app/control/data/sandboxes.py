"""Sandbox rows: tokens (stored hashed), status changes, heartbeats, and failure counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from inspect_app.control import tokens, transitions
from inspect_app.db import session_scope
from inspect_app.models import Image, ImageStatus, Sandbox, SandboxStatus, Session, utcnow

LIVE = (SandboxStatus.SPAWNING, SandboxStatus.CONNECTED, SandboxStatus.READY)


def create(
    engine: sa.Engine, *, session_id: str, provider: str, boot_mode: str, replica_id: str = ""
) -> tuple[Sandbox, str, str] | None:
    """A new sandbox row (served by ``replica_id``), its bridge token and its tool token (returned
    once; only hashes are stored). None when the session has a live sandbox already (another
    replica started one at the same time: one live sandbox per session is a unique index)."""
    token, tool_token = tokens.mint(tokens.SANDBOX_PREFIX), tokens.mint(tokens.TOOL_PREFIX)
    with session_scope(engine) as db:
        row = Sandbox(
            session_id=session_id,
            provider=provider,
            boot_mode=boot_mode,
            replica_id=replica_id,
            token_hash=tokens.hash_token(token),
            tool_token_hash=tokens.hash_token(tool_token),
        )
        db.add(row)
        try:
            db.flush()
        except sa.exc.IntegrityError:
            db.rollback()
            if current(engine, session_id) is not None:
                return None
            raise
        return row, token, tool_token


@dataclass(frozen=True)
class ToolCaller:
    """Who holds a tool token: a session's live sandbox, or an image build (no session)."""

    repository_id: int
    session_id: str | None
    sandbox_id: str | None


def for_tool_token(engine: sa.Engine, tool_token: str) -> ToolCaller | None:
    """The live sandbox or running build this tool token belongs to (once over, the token is worthless)."""
    digest = tokens.hash_token(tool_token)
    with session_scope(engine) as db:
        row = db.exec(select(Sandbox).where(Sandbox.tool_token_hash == digest)).first()
        if row is not None:
            session = db.get(Session, row.session_id)
            if row.status not in LIVE or session is None:
                return None
            return ToolCaller(repository_id=session.repository_id, session_id=session.id, sandbox_id=row.id)
        image = db.exec(select(Image).where(Image.tool_token_hash == digest)).first()
        if image is not None and image.status == ImageStatus.BUILDING:
            return ToolCaller(repository_id=image.repository_id, session_id=None, sandbox_id=None)
        return None


def get(engine: sa.Engine, sandbox_id: str) -> Sandbox | None:
    with session_scope(engine) as db:
        return db.get(Sandbox, sandbox_id)


def current(engine: sa.Engine, session_id: str) -> Sandbox | None:
    """The session's newest sandbox that is not over."""
    with session_scope(engine) as db:
        return db.exec(
            select(Sandbox)
            .where(Sandbox.session_id == session_id, col(Sandbox.status).in_(LIVE))
            .order_by(col(Sandbox.created_at).desc())
            .limit(1)
        ).first()


def newest(engine: sa.Engine, session_id: str) -> Sandbox | None:
    with session_scope(engine) as db:
        return db.exec(
            select(Sandbox).where(Sandbox.session_id == session_id).order_by(col(Sandbox.created_at).desc()).limit(1)
        ).first()


def authenticate(engine: sa.Engine, *, sandbox_id: str, session_id: str, token: str) -> tuple[Sandbox | None, str]:
    """The sandbox if this token may connect now; else None and why ('unauthorized' or 'gone')."""
    with session_scope(engine) as db:
        row = db.get(Sandbox, sandbox_id)
        if row is None or row.session_id != session_id or not tokens.matches(token, row.token_hash):
            return None, "unauthorized"
        if row.status not in LIVE:
            return None, "gone"
        newer = db.exec(
            select(Sandbox.id).where(Sandbox.session_id == session_id, Sandbox.created_at > row.created_at)
        ).first()
        if newer is not None:
            return None, "gone"  # replaced by a newer sandbox
        return row, ""


def set_status(engine: sa.Engine, sandbox_id: str, status: str, *, error: str = "") -> bool:
    """Move the sandbox to ``status`` (``transitions.sandbox_may`` decides): False when it had ended
    already and the write was ignored."""
    with session_scope(engine) as db:
        row = db.get(Sandbox, sandbox_id)
        if row is None or not transitions.sandbox_may(row.status, status):
            return False
        row.status = status
        if error:
            row.error = error
        now = utcnow()
        if status == SandboxStatus.READY and row.ready_at is None:
            row.ready_at = now
        if status in transitions.ENDED:
            row.stopped_at = now
        return True


def set_provider_id(engine: sa.Engine, sandbox_id: str, provider_id: str) -> None:
    """Where the provider keeps it (its status is the sandbox's own business by then: it may be up)."""
    with session_scope(engine) as db:
        row = db.get(Sandbox, sandbox_id)
        if row is not None:
            row.provider_id = provider_id


def mark_ready(engine: sa.Engine, sandbox_id: str, *, runtime_version: str) -> bool:
    """The sandbox said ``ready``; False when it had ended meanwhile (stopped, failed): it stays so."""
    with session_scope(engine) as db:
        row = db.get(Sandbox, sandbox_id)
        if row is None or not transitions.sandbox_may(row.status, SandboxStatus.READY):
            return False
        row.status = SandboxStatus.READY
        row.runtime_version = runtime_version
        row.ready_at = row.ready_at or utcnow()
        row.last_heartbeat_at = utcnow()
        return True


def take(engine: sa.Engine, sandbox_id: str, replica_id: str) -> tuple[int, int] | None:
    """The sandbox connected to ``replica_id``, which serves it from now on. Returns the owner's
    epoch, raised when the sandbox comes from another replica (whose writes for it are refused from
    then on: ``events``), and how far its bridge events are stored; None if there is no such row.

    One statement: it waits for a batch of the previous owner being written (the row's lock), so
    what it returns as stored includes that batch, and any later batch of that owner is refused."""
    moved = sa.case((col(Sandbox.replica_id) == replica_id, 0), else_=1)
    with session_scope(engine) as db:
        row = db.exec(
            sa.update(Sandbox)
            .where(col(Sandbox.id) == sandbox_id)
            .values(owner_epoch=col(Sandbox.owner_epoch) + moved, replica_id=replica_id)
            .returning(col(Sandbox.owner_epoch), col(Sandbox.bridge_received))
        ).one_or_none()
        return None if row is None else (row[0], row[1])


def heartbeat(engine: sa.Engine, sandbox_id: str) -> None:
    with session_scope(engine) as db:
        row = db.get(Sandbox, sandbox_id)
        if row is not None:
            row.last_heartbeat_at = utcnow()


def set_snapshot(engine: sa.Engine, sandbox_id: str, ref: str) -> None:
    with session_scope(engine) as db:
        row = db.get(Sandbox, sandbox_id)
        if row is not None:
            row.snapshot_ref = ref


def keep_positions(engine: sa.Engine, received: dict[str, int], epochs: dict[str, int]) -> None:
    """Remember how far each sandbox's bridge events were handled (the server is stopping), for the
    sandboxes still held in the epoch this server knows (not one another replica took over)."""
    with session_scope(engine) as db:
        for sandbox_id, n in received.items():
            row = db.get(Sandbox, sandbox_id)
            if row is not None and row.owner_epoch == epochs.get(sandbox_id, row.owner_epoch):
                row.bridge_received = max(row.bridge_received, n)


def recent_failures(engine: sa.Engine, session_id: str, window_s: float) -> list[Sandbox]:
    """The session's sandboxes that failed to *start* lately (the breaker's count). One that was ready
    and died later (killed, out of memory, its agent crashing) is not a boot failure: its prompt
    failed, and the next prompt deserves a new sandbox rather than a tripped breaker."""
    since = utcnow() - timedelta(seconds=window_s)
    with session_scope(engine) as db:
        return list(
            db.exec(
                select(Sandbox)
                .where(
                    Sandbox.session_id == session_id,
                    Sandbox.status == SandboxStatus.FAILED,
                    col(Sandbox.ready_at).is_(None),
                    Sandbox.created_at >= since,
                )
                .order_by(col(Sandbox.created_at))
            ).all()
        )


def live(engine: sa.Engine, *, replica_id: str | None = None) -> list[Sandbox]:
    """The live sandboxes (those ``replica_id`` serves, when given)."""
    with session_scope(engine) as db:
        query = select(Sandbox).where(col(Sandbox.status).in_(LIVE))
        if replica_id is not None:
            query = query.where(Sandbox.replica_id == replica_id)
        return list(db.exec(query).all())
