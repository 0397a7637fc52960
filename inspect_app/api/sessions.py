"""``/api/sessions``: sessions, their prompt queue, events, stop, sleep and archive."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from inspect_app.api.deps import CurrentUser, PlaneDep, ServicesDep
from inspect_app.api.schemas import (
    MAX_BIGINT,
    Cursor,
    EventsPage,
    PromptAccepted,
    PromptCreate,
    PromptPublic,
    SessionCreate,
    SessionUpdate,
)
from inspect_app.control.data import prompts, sessions
from inspect_app.control.plane import session_public

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


@router.post("", status_code=201)
async def create(body: SessionCreate, services: ServicesDep, plane: PlaneDep, user: CurrentUser) -> dict[str, Any]:
    session = await plane.create_session(
        repository_id=body.repository_id,
        creator_id=user.id or 0,
        branch=body.branch,
        model=body.model or "",
        title=body.title or "",
        source="api",
    )
    return session_public(session)


@router.get("")
async def list_sessions(
    services: ServicesDep,
    user: CurrentUser,
    mine: bool = False,
    status: str | None = Query(default=None, max_length=16),
    archived: bool = False,
    limit: int = Query(default=50, ge=1, le=100),
    offset: Cursor = 0,
) -> dict[str, Any]:
    rows = await asyncio.to_thread(
        sessions.list_sessions,
        services.engine,
        creator_id=user.id if mine else None,
        status=status,
        archived=archived,
        limit=limit,
        offset=offset,
    )
    items = [{**row.__dict__, "updated_at": row.updated_at.isoformat()} for row in rows]
    return {"sessions": items, "next_offset": offset + len(items) if len(items) == limit else None}


@router.get("/{session_id}")
async def get(session_id: str, services: ServicesDep, plane: PlaneDep, _user: CurrentUser) -> dict[str, Any]:
    await asyncio.to_thread(sessions.get, services.engine, session_id)
    return await asyncio.to_thread(plane.session_snapshot, session_id)


@router.patch("/{session_id}")
async def rename(session_id: str, body: SessionUpdate, services: ServicesDep, _user: CurrentUser) -> dict[str, Any]:
    return session_public(await asyncio.to_thread(sessions.rename, services.engine, session_id, body.title))


@router.post("/{session_id}/archive")
async def archive(session_id: str, services: ServicesDep, user: CurrentUser) -> dict[str, Any]:
    return session_public(await services.children.set_archived(session_id, True, user))  # its children stop


@router.get("/{session_id}/children")
async def children(session_id: str, services: ServicesDep, _user: CurrentUser) -> dict[str, Any]:
    """The sessions this one's agent started, with their state (the parent's timeline has them too)."""
    await asyncio.to_thread(sessions.get, services.engine, session_id)
    rows = await services.children.listing(session_id)
    return {"children": [{**row.__dict__, "url": services.children.link(row.id)} for row in rows]}


@router.post("/{session_id}/unarchive")
async def unarchive(session_id: str, services: ServicesDep, user: CurrentUser) -> dict[str, Any]:
    return session_public(await services.children.set_archived(session_id, False, user))


@router.post("/{session_id}/prompts", status_code=202, response_model=PromptAccepted)
async def prompt(session_id: str, body: PromptCreate, plane: PlaneDep, user: CurrentUser) -> PromptAccepted:
    queued = await plane.submit_prompt(
        session_id=session_id,
        user=user,
        content=body.content,
        client_request_id=body.client_request_id,
        context=body.context,
        mode=body.mode,
        model=body.model,
    )
    return PromptAccepted(
        message_id=queued.message.id, position=queued.position, status=queued.message.status, created=queued.created
    )


@router.get("/{session_id}/prompts/{message_id}", response_model=PromptPublic)
async def prompt_detail(session_id: str, message_id: str, services: ServicesDep, _user: CurrentUser) -> PromptPublic:
    """One prompt with its context (its ``prompt`` event only says ``has_context``)."""
    message = await asyncio.to_thread(prompts.get, services.engine, session_id, message_id)
    return PromptPublic.model_validate(message, from_attributes=True)


@router.delete("/{session_id}/prompts/{message_id}")
async def cancel(session_id: str, message_id: str, plane: PlaneDep, user: CurrentUser) -> dict[str, str]:
    message = await plane.cancel_prompt(session_id=session_id, message_id=message_id, user=user)
    return {"message_id": message.id, "status": message.status}


@router.post("/{session_id}/stop", status_code=202)
async def stop(session_id: str, services: ServicesDep, user: CurrentUser) -> dict[str, str]:
    await services.children.stop_parent(session_id, user)
    return {"status": "stopping"}


@router.post("/{session_id}/sleep", status_code=202)
async def sleep(session_id: str, plane: PlaneDep, user: CurrentUser) -> dict[str, str]:
    """Stop the session's sandbox now, as the idle timeout would (snapshot first): the next prompt
    resumes it. Refused while a prompt runs (stop it first)."""
    await plane.put_to_sleep(session_id, by=user.name)
    return {"status": "stopped"}


@router.post("/{session_id}/client-token", status_code=201)
async def client_token(session_id: str, services: ServicesDep, user: CurrentUser) -> dict[str, str]:
    """A short-lived token for the live stream (``/ws``), so a long-lived API token need not travel there."""
    token, expires = await asyncio.to_thread(sessions.issue_client_token, services.engine, session_id, user.id or 0)
    return {"client_token": token, "expires_at": expires.isoformat()}


@router.get("/{session_id}/events", response_model=EventsPage)
async def events(
    session_id: str,
    services: ServicesDep,
    plane: PlaneDep,
    _user: CurrentUser,
    after: Cursor = 0,
    cursor: Annotated[
        int | None,
        Query(ge=0, le=MAX_BIGINT, description="The change feed: rows inserted or updated since this revision"),
    ] = None,
    limit: int = Query(default=100, ge=1, le=500),
) -> EventsPage:
    """``after=<seq>``: the timeline, oldest first, each row as it is now (a row updated in place keeps
    its seq, so a poller by seq misses its updates). ``cursor=<rev>``: every row changed since that
    revision, in its latest version — follow the ``cursor`` each answer gives to see every update."""
    await asyncio.to_thread(sessions.get, services.engine, session_id)
    if cursor is not None:
        changed, next_cursor, more = await asyncio.to_thread(
            plane.events.changes, session_id, after=cursor, limit=limit
        )
        return EventsPage(events=[e.to_dict() for e in changed], cursor=next_cursor, more=more)
    page, following = await asyncio.to_thread(plane.events.page, session_id, after=after, limit=limit)
    return EventsPage(events=[e.to_dict() for e in page], next=following)
