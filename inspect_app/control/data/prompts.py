"""The durable prompt queue: one FIFO per session, at most one prompt processing at a time.

The database enforces "at most one processing per session" (a partial unique index), so two
dispatchers racing (two workers) cannot both start a prompt.

A prompt's ``context`` (e.g. a page element picked with the extension) is capped by its serialized
size and stored once, on the message: the ``prompt`` event only says ``has_context``, and readers
fetch it with ``contexts`` (the timeline) or ``get`` (the API).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session as DBSession
from sqlmodel import col, func, select

from inspect_app.control import transitions
from inspect_app.control.data import instance
from inspect_app.control.text import refuse_nul
from inspect_app.db import session_scope
from inspect_app.errors import Conflict, InvalidInput, NotFound
from inspect_app.models import Message, MessageStatus, Session, SessionStatus, User, utcnow
from sandbox.protocol import MAX_PROMPT_CHARS

MAX_CONTENT_CHARS = MAX_PROMPT_CHARS  # what the agent gets: the prompt and its context together
CONTEXT_SHOWN_CHARS = 20_000  # of a context's pretty JSON, the part the agent is shown
MAX_CONTEXT_BYTES = 64 * 1024  # serialized (compact JSON, UTF-8): a picked element is a few KiB
MAX_PENDING = 10
MAX_REQUEST_ID = 100


@dataclass(frozen=True)
class Enqueued:
    message: Message
    created: bool
    position: int  # 0 = running now or next; n = n prompts ahead of it
    started: bool = False  # moved straight to processing (start_if_idle and nothing ahead)


def delivered_text(content: str, context: dict[str, Any] | None) -> str:
    """The prompt as the agent gets it: its text, then any attached context (e.g. a picked page
    element), shown up to ``CONTEXT_SHOWN_CHARS``."""
    if not context:
        return content
    return f"{content}\n\n<context>\n{json.dumps(context, indent=2)[:CONTEXT_SHOWN_CHARS]}\n</context>"


def _pending_count(db: DBSession, session_id: str) -> int:
    return db.exec(
        select(func.count()).where(Message.session_id == session_id, Message.status == MessageStatus.PENDING)
    ).one()


def _position(db: DBSession, message: Message) -> int:
    if message.status != MessageStatus.PENDING:
        return 0
    ahead = db.exec(
        select(func.count()).where(
            Message.session_id == message.session_id,
            col(Message.status).in_([MessageStatus.PENDING, MessageStatus.PROCESSING]),
            Message.created_at < message.created_at,
        )
    ).one()
    return int(ahead)


MODES = ("build", "plan")  # plan: the agent plans and the sandbox refuses its writes


def enqueue(
    engine: sa.Engine,
    *,
    session_id: str,
    author_id: int,
    content: str,
    client_request_id: str | None = None,
    source: str = "api",
    context: dict[str, Any] | None = None,
    start_if_idle: bool = False,
    mode: str = "build",
    model: str = "",
) -> Enqueued:
    """Add a prompt. The same ``client_request_id`` twice returns the first prompt, not a new one.

    With ``start_if_idle`` (the sandbox is ready) a prompt with nothing ahead of it is marked
    processing in the same transaction, so a warm sandbox gets it without a second round trip.
    """
    if not content.strip():
        raise InvalidInput("the prompt is empty", code="empty_prompt")
    if mode not in MODES:
        raise InvalidInput(f"a prompt's mode is {' or '.join(MODES)}", code="bad_mode")
    if model and not instance.valid_model(model):
        raise InvalidInput(f"{model!r} is not a model; write provider/model", code="bad_model")
    if len(content) > MAX_CONTENT_CHARS:
        raise InvalidInput(
            f"the prompt has {len(content)} characters; the limit is {MAX_CONTENT_CHARS}", code="too_long"
        )
    if client_request_id is not None and not 0 < len(client_request_id) <= MAX_REQUEST_ID:
        raise InvalidInput(f"client_request_id must be 1-{MAX_REQUEST_ID} characters")
    refuse_nul("content", content)
    refuse_nul("client_request_id", client_request_id)
    check_context(context)
    delivered = len(delivered_text(content, context))
    if delivered > MAX_CONTENT_CHARS:  # checked here, where every edge's prompts enter, not at delivery
        raise InvalidInput(
            f"the prompt with its context is {delivered} characters as the agent gets it; the limit is "
            f"{MAX_CONTENT_CHARS} (a context counts up to {CONTEXT_SHOWN_CHARS:,} characters)",
            code="too_long",
        )
    with session_scope(engine) as db:
        session = db.get(Session, session_id)
        if session is None:
            raise NotFound(f"no session {session_id}")
        if session.archived:
            raise Conflict("the session is archived; unarchive it to send prompts", code="archived")
        if client_request_id:
            existing = db.exec(
                select(Message).where(Message.session_id == session_id, Message.client_request_id == client_request_id)
            ).first()
            if existing is not None:
                return Enqueued(existing, created=False, position=_position(db, existing))
        ahead = db.exec(
            select(func.count()).where(
                Message.session_id == session_id,
                col(Message.status).in_([MessageStatus.PENDING, MessageStatus.PROCESSING]),
            )
        ).one()
        if ahead >= MAX_PENDING and _pending_count(db, session_id) >= MAX_PENDING:
            raise Conflict(
                f"{MAX_PENDING} prompts are already waiting in this session; wait or cancel one", code="queue_full"
            )
        message = Message(
            session_id=session_id,
            author_id=author_id,
            content=content,
            client_request_id=client_request_id,
            source=source,
            context=context or {},
            model=model or session.model,
            mode=mode,
        )
        started = start_if_idle and ahead == 0
        if started:
            _move(message, MessageStatus.PROCESSING)
            session.status = SessionStatus.RUNNING  # with the prompt, in one write: never after its end
        db.add(message)
        session.last_activity_at = session.updated_at = utcnow()
        try:
            db.flush()
        except sa.exc.IntegrityError:  # the same request id raced in from elsewhere
            db.rollback()
            existing = db.exec(
                select(Message).where(Message.session_id == session_id, Message.client_request_id == client_request_id)
            ).one()
            return Enqueued(existing, created=False, position=_position(db, existing))
        return Enqueued(message, created=True, position=int(ahead), started=started)


def check_context(context: dict[str, Any] | None) -> None:
    """Refuse a context over ``MAX_CONTEXT_BYTES`` serialized, not JSON, or holding a NUL."""
    if not context:
        return
    try:
        size = len(json.dumps(context, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError, RecursionError):
        raise InvalidInput("the context must be JSON (objects, lists, strings, numbers)", code="bad_context") from None
    if size > MAX_CONTEXT_BYTES:
        raise InvalidInput(
            f"the context is {size} bytes as JSON; the limit is {MAX_CONTEXT_BYTES}", code="context_too_large"
        )
    refuse_nul("context", context)


def get(engine: sa.Engine, session_id: str, message_id: str) -> Message:
    """One prompt of a session, with its context."""
    with session_scope(engine) as db:
        message = db.get(Message, message_id)
        if message is None or message.session_id != session_id:
            raise NotFound(f"no prompt {message_id} in this session")
        return message


def contexts(engine: sa.Engine, message_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The non-empty contexts of these prompts, by message id (what their ``prompt`` events refer to)."""
    if not message_ids:
        return {}
    with session_scope(engine) as db:
        rows = db.exec(select(Message.id, Message.context).where(col(Message.id).in_(message_ids))).all()
    return {message_id: dict(context) for message_id, context in rows if context}


def attach_contexts(engine: sa.Engine, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """These events, with each ``prompt`` event that ``has_context`` given its context (for display)."""
    wanted = [
        str(e.get("message_id"))
        for e in events
        if e.get("type") == "prompt" and e.get("message_id") and (e.get("data") or {}).get("has_context")
    ]
    found = contexts(engine, wanted)
    if not found:
        return events
    return [
        {**e, "data": {**e["data"], "context": found[e["message_id"]]}}
        if e.get("type") == "prompt" and e.get("message_id") in found
        else e
        for e in events
    ]


def cancel(engine: sa.Engine, *, session_id: str, message_id: str) -> Message:
    with session_scope(engine) as db:
        message = db.get(Message, message_id)
        if message is None or message.session_id != session_id:
            raise NotFound(f"no prompt {message_id} in this session")
        if not _move(message, MessageStatus.CANCELLED):
            raise Conflict(f"the prompt is {message.status}; only waiting prompts can be cancelled", code="not_pending")
        return message


def processing(engine: sa.Engine, session_id: str) -> Message | None:
    with session_scope(engine) as db:
        return db.exec(
            select(Message).where(Message.session_id == session_id, Message.status == MessageStatus.PROCESSING)
        ).first()


def start_next(engine: sa.Engine, session_id: str) -> Message | None:
    """Move the oldest pending prompt to processing; None if one is processing or none waits."""
    with session_scope(engine) as db:
        if db.exec(
            select(Message.id).where(Message.session_id == session_id, Message.status == MessageStatus.PROCESSING)
        ).first():
            return None
        message = db.exec(
            select(Message)
            .where(Message.session_id == session_id, Message.status == MessageStatus.PENDING)
            .order_by(col(Message.created_at), col(Message.id))
            .limit(1)
        ).first()
        if message is None or not _move(message, MessageStatus.PROCESSING):
            return None
        session = db.get(Session, session_id)
        if session is not None:  # running, with the prompt, in one write: never after its end
            session.status, session.updated_at = SessionStatus.RUNNING, utcnow()
        try:
            db.flush()
        except sa.exc.IntegrityError:  # another dispatcher won the race
            db.rollback()
            return None
        return message


def finish(engine: sa.Engine, message_id: str, *, success: bool, error: str = "") -> Message | None:
    """Complete a processing prompt (idempotent: a finished prompt is left as it is)."""
    with session_scope(engine) as db:
        message = db.get(Message, message_id)
        if message is None or message.status != MessageStatus.PROCESSING:
            return None  # ended already (a re-sent completion), or waiting again
        _move(message, MessageStatus.COMPLETED if success else MessageStatus.FAILED)
        message.error = "" if success else error
        session = db.get(Session, message.session_id)
        if session is not None:
            session.last_activity_at = session.updated_at = utcnow()
        return message


def fail_processing(engine: sa.Engine, reason: str, *, session_id: str | None = None) -> list[Message]:
    """Fail prompts left processing (their sandbox is gone); returns them."""
    with session_scope(engine) as db:
        query = select(Message).where(Message.status == MessageStatus.PROCESSING)
        if session_id is not None:
            query = query.where(Message.session_id == session_id)
        failed = list(db.exec(query).all())
        for message in failed:
            _move(message, MessageStatus.FAILED)
            message.error = reason
        return failed


def requeue(engine: sa.Engine, message_id: str) -> None:
    """A started prompt its sandbox did not take (the socket failed): it waits again, first in line."""
    with session_scope(engine) as db:
        message = db.get(Message, message_id)
        if message is not None and message.status == MessageStatus.PROCESSING:
            _move(message, MessageStatus.PENDING)


def _move(message: Message, status: MessageStatus) -> bool:
    """Set the prompt's status if the rules allow it now (``transitions.prompt_may``), with the time
    it started or ended; False when it has moved on already."""
    if not transitions.prompt_may(message.status, status):
        return False
    message.status = status
    if status == MessageStatus.PROCESSING:
        message.started_at = utcnow()
    elif status == MessageStatus.PENDING:
        message.started_at = None
    else:
        message.completed_at = utcnow()
    return True


def has_pending(engine: sa.Engine, session_id: str) -> bool:
    with session_scope(engine) as db:
        return _pending_count(db, session_id) > 0


@dataclass(frozen=True)
class QueuedPrompt:
    id: str
    status: str
    content: str
    author_id: int
    author_name: str
    created_at: str


def queue(engine: sa.Engine, session_id: str) -> list[QueuedPrompt]:
    """The processing prompt and the waiting ones, in order."""
    with session_scope(engine) as db:
        rows = db.exec(
            select(Message, User.name)
            .join(User, col(User.id) == Message.author_id)
            .where(
                Message.session_id == session_id,
                col(Message.status).in_([MessageStatus.PROCESSING, MessageStatus.PENDING]),
            )
            .order_by(col(Message.created_at), col(Message.id))
        ).all()
        return [
            QueuedPrompt(m.id, m.status, m.content, m.author_id, name, m.created_at.isoformat()) for m, name in rows
        ]
