"""Sessions: create, list, read, rename, archive; participants join on first connect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session as DBSession
from sqlmodel import col, select

from inspect_app.control import tokens, transitions
from inspect_app.control.data import instance
from inspect_app.control.names import valid_branch
from inspect_app.control.text import refuse_nul
from inspect_app.db import session_scope
from inspect_app.errors import InvalidInput, NotFound, Unauthorized
from inspect_app.models import (
    Artifact,
    Message,
    MessageStatus,
    Participant,
    Repository,
    Session,
    SessionStatus,
    User,
    utcnow,
)

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
    pr_state: str = ""  # the newest pull request's state (open | merged | closed), if any
    unread: bool = False  # the viewer takes part and events arrived since they last looked
    parent_id: str | None = None  # a child session's parent (control/children.py)


def list_sessions(
    engine: sa.Engine,
    *,
    viewer_id: int | None = None,
    creator_id: int | None = None,
    status: str | None = None,
    archived: bool = False,
    search: str = "",
    limit: int = 50,
    offset: int = 0,
) -> list[SessionSummary]:
    """Sessions, newest activity first. ``creator_id`` narrows to one person's ("mine");
    ``viewer_id`` fills ``unread`` for that person."""
    limit = max(1, min(limit, MAX_PAGE))
    newest_pr = (
        select(Artifact.state)
        .where(Artifact.session_id == Session.id, Artifact.type == "pr")
        .order_by(col(Artifact.id).desc())
        .limit(1)
        .correlate(Session)
        .scalar_subquery()
    )
    read_seq = (
        select(Participant.last_read_seq)
        .where(Participant.session_id == Session.id, Participant.user_id == (viewer_id or 0))
        .correlate(Session)
        .scalar_subquery()
    )
    query = (
        select(Session, Repository.name, User.name, newest_pr, read_seq)  # type: ignore[call-overload]  # 5 columns: past SQLModel's typed overloads
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
    if search.strip():
        pattern = f"%{search.strip().lower()}%"
        query = query.where(
            sa.or_(sa.func.lower(Session.title).like(pattern), sa.func.lower(Repository.name).like(pattern))
        )
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
                pr_state=pr_state or "",
                unread=last_read is not None and row.last_seq > last_read,
                parent_id=row.parent_id,
            )
            for row, repo_name, creator_name, pr_state, last_read in db.exec(query).all()
        ]


# --- create, read, change ---------------------------------------------------------------------
MAX_TITLE = 300


def work_branch_for(session_id: str) -> str:
    return f"inspect/{session_id}"


def create(
    engine: sa.Engine,
    *,
    repository_id: int,
    creator_id: int,
    branch: str | None = None,
    model: str = "",
    title: str = "",
    source: str = "api",
    source_ref: dict | None = None,
    work_branch: str | None = None,
    fork_pull: int | None = None,
    parent_id: str | None = None,
) -> Session:
    """``work_branch``: where the agent's commits go, when not a branch of the session's own (work on
    a pull request goes onto its branch). ``fork_pull``: the session works on that pull request from
    a fork, on ``branch`` (its base) with the fork's code, and as untrusted code (``Session.fork_ref``)."""
    if len(title) > MAX_TITLE:
        raise InvalidInput(f"a title is at most {MAX_TITLE} characters")
    refuse_nul("title", title)
    if model and not instance.valid_model(model):
        raise InvalidInput(f"{model!r} is not a model; write provider/model", code="bad_model")
    with session_scope(engine) as db:
        repo = db.get(Repository, repository_id)
        if repo is None:
            raise NotFound(f"no repository {repository_id}")
        base = branch or repo.default_branch
        if not valid_branch(base):
            raise InvalidInput(f"{base!r} is not a valid branch name", code="bad_branch")
        session = Session(
            repository_id=repository_id,
            base_branch=base,
            creator_id=creator_id,
            model=model,
            title=title.strip(),
            source=source,
            source_ref=source_ref or {},
            fork_ref=f"refs/pull/{fork_pull}/head" if fork_pull is not None else "",
            parent_id=parent_id,
        )
        if work_branch is not None and not valid_branch(work_branch):
            raise InvalidInput(f"{work_branch!r} is not a valid branch name", code="bad_branch")
        session.branch = work_branch or work_branch_for(session.id)
        db.add(session)
        db.flush()
        db.add(Participant(session_id=session.id, user_id=creator_id, role="owner"))
        return session


def _require(db: DBSession, session_id: str) -> Session:
    session = db.get(Session, session_id)
    if session is None:
        raise NotFound(f"no session {session_id}")
    return session


def get(engine: sa.Engine, session_id: str) -> Session:
    with session_scope(engine) as db:
        session = _require(db, session_id)
        return session


def rename(engine: sa.Engine, session_id: str, title: str) -> Session:
    title = title.strip()
    if not title or len(title) > MAX_TITLE:
        raise InvalidInput(f"a title is 1-{MAX_TITLE} characters")
    refuse_nul("title", title)
    with session_scope(engine) as db:
        session = _require(db, session_id)
        session.title = title
        session.updated_at = utcnow()
        return session


def touch(engine: sa.Engine, session_id: str) -> None:
    """Someone is working in the session (a terminal): its idle clock starts again."""
    with session_scope(engine) as db:
        session = db.get(Session, session_id)
        if session is not None:
            session.last_activity_at = utcnow()


def set_archived(engine: sa.Engine, session_id: str, archived: bool) -> Session:
    with session_scope(engine) as db:
        session = _require(db, session_id)
        session.archived = archived
        session.updated_at = utcnow()
        return session


def set_status(engine: sa.Engine, session_id: str, status: str, reason: str = "") -> Session | None:
    """Set a status that does not follow from the prompts (spawning, syncing, stopped, stale, failed:
    ``transitions.session_may``); None when there is no such session or the word came too late."""
    with session_scope(engine) as db:
        session = db.get(Session, session_id)
        if session is None or not transitions.session_may(session.status, status):
            return None
        session.status = status
        session.status_reason = reason
        session.updated_at = utcnow()
        return session


def settle(engine: sa.Engine, session_id: str, *, sandbox_up: bool) -> None:
    """The session's status from what is true now, in one statement: running while a prompt is
    processing, else ready (its sandbox up) or stopped. One statement, so a prompt that starts or ends
    meanwhile is never overwritten by a status read before it."""
    processing = (
        sa.select(col(Message.id))
        .where(col(Message.session_id) == session_id, col(Message.status) == MessageStatus.PROCESSING)
        .exists()
    )
    idle = SessionStatus.READY if sandbox_up else SessionStatus.STOPPED
    now = utcnow()
    with session_scope(engine) as db:
        db.execute(
            sa.update(Session)
            .where(col(Session.id) == session_id)
            .values(
                status=sa.case((processing, SessionStatus.RUNNING.value), else_=idle.value),
                status_reason="",
                updated_at=now,
                last_activity_at=now,  # the idle clock starts when work ends
            )
        )


def join(engine: sa.Engine, session_id: str, user_id: int) -> Participant:
    """Participants join on first connect: the creator is the owner, everyone else a member."""
    with session_scope(engine) as db:
        _require(db, session_id)
        participant = db.exec(
            select(Participant).where(Participant.session_id == session_id, Participant.user_id == user_id)
        ).first()
        if participant is None:
            participant = Participant(session_id=session_id, user_id=user_id, role="member")
            db.add(participant)
            try:
                db.flush()
            except sa.exc.IntegrityError:
                db.rollback()
                participant = db.exec(
                    select(Participant).where(Participant.session_id == session_id, Participant.user_id == user_id)
                ).one()
        now = utcnow()
        if participant.last_seen_at is None or now - participant.last_seen_at > timedelta(seconds=60):
            participant.last_seen_at = now
        return participant


def mark_read(engine: sa.Engine, session_id: str, user_id: int, seq: int) -> None:
    """Remember that this participant has seen the session up to event ``seq`` (never backwards)."""
    with session_scope(engine) as db:
        db.exec(
            sa.update(Participant)
            .where(
                col(Participant.session_id) == session_id,
                col(Participant.user_id) == user_id,
                col(Participant.last_read_seq) < seq,
            )
            .values(last_read_seq=seq)
        )


def participants(engine: sa.Engine, session_id: str) -> list[tuple[Participant, User]]:
    with session_scope(engine) as db:
        return list(
            db.exec(
                select(Participant, User)
                .join(User, col(User.id) == Participant.user_id)
                .where(Participant.session_id == session_id)
                .order_by(col(Participant.joined_at))
            ).all()
        )


# --- client tokens: a participant's short-lived credential for the live stream -----------------
CLIENT_TOKEN_TTL = timedelta(hours=12)


def issue_client_token(engine: sa.Engine, session_id: str, user_id: int) -> tuple[str, datetime]:
    """A new expiring token for this participant (joins them first); only its hash is stored."""
    join(engine, session_id, user_id)
    token = tokens.mint(tokens.CLIENT_PREFIX)
    expires = utcnow() + CLIENT_TOKEN_TTL
    with session_scope(engine) as db:
        participant = db.exec(
            select(Participant).where(Participant.session_id == session_id, Participant.user_id == user_id)
        ).one()
        participant.client_token_hash = tokens.hash_token(token)
        participant.client_token_expires_at = expires
    return token, expires


def user_for_client_token(engine: sa.Engine, session_id: str, token: str) -> User:
    """The participant a client token belongs to, if it is for this session and not expired."""
    with session_scope(engine) as db:
        row = db.exec(
            select(Participant, User)
            .join(User, col(User.id) == Participant.user_id)
            .where(Participant.client_token_hash == tokens.hash_token(token))
        ).first()
        if row is None or row[0].session_id != session_id:
            raise Unauthorized("invalid client token")
        participant, user = row
        if participant.client_token_expires_at is None or participant.client_token_expires_at < utcnow():
            raise Unauthorized("the client token has expired; ask for a new one")
        return user
