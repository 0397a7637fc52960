"""``/api/sessions/{id}/ws``: the live session stream for non-browser clients.

Send ``{"type": "subscribe", "token": <API token or client token>}`` first; receive ``snapshot`` (the session, its
queue and the last page of events; a ``prompt`` event with ``has_context`` has its context at
``GET /api/sessions/{id}/prompts/{message_id}``), then every live event, either alone or, when several are
ready at once, in a ``{"type": "batch", "events": [...]}`` frame (in order). Then send ``prompt``, ``stop``,
``typing`` or ``presence``. Bad input gets ``{"type": "error", "error": {...}}``; the socket stays.
Live-only frames carry no ``rev`` (they are not stored): ``presence``, ``typing``, and
``changes_kept`` (the session's changes were read and kept: ``GET /api/sessions/{id}`` is unchanged,
the web page's details read them again).

Resuming: each event carries its ``rev`` and the snapshot its ``cursor``. A client that reconnects, or
gets ``{"type": "resync"}`` (it fell behind and live events were dropped), subscribes again with
``"cursor": <the last rev it applied>`` and its snapshot's events are every row changed since, each in
its latest version (or it reads ``GET /api/sessions/{id}/events?cursor=``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from inspect_app import services as services_module
from inspect_app.api.schemas import MAX_BIGINT, PromptCreate
from inspect_app.control import presence
from inspect_app.control.data import sessions, users
from inspect_app.control.events import session_channel
from inspect_app.control.plane import ControlPlane
from inspect_app.control.tokens import CLIENT_PREFIX
from inspect_app.errors import InspectError
from inspect_app.models import User

router = APIRouter(tags=["live"])
log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 10.0
CLOSE_UNAUTHORIZED = 4401
MAX_CLIENT_MESSAGE = 128 * 1024
FRAME_INTERVAL_S = 0.02


def error_frame(code: str, message: str) -> str:
    return json.dumps({"type": "error", "error": {"code": code, "message": message}})


def _position(first: dict[str, Any], name: str) -> int:
    """A subscribe message's ``after`` (seq) or ``cursor`` (revision); -1 when absent or not one."""
    value = first.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BIGINT else -1


async def authenticate(websocket: WebSocket, session_id: str) -> tuple[User, dict[str, Any]] | None:
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), SUBSCRIBE_TIMEOUT_S)
        first = json.loads(raw)
        if not isinstance(first, dict) or first.get("type") != "subscribe" or not isinstance(first.get("token"), str):
            raise ValueError
    except (TimeoutError, ValueError):
        await websocket.send_text(error_frame("subscribe_first", 'send {"type": "subscribe", "token": "..."} first'))
        await websocket.close(CLOSE_UNAUTHORIZED)
        return None
    engine = services_module.current().engine
    token: str = first["token"]
    try:
        if token.startswith(f"{CLIENT_PREFIX}_"):
            user = await asyncio.to_thread(sessions.user_for_client_token, engine, session_id, token)
        else:
            user = await asyncio.to_thread(users.user_for_token, engine, token)
        await asyncio.to_thread(sessions.join, engine, session_id, user.id or 0)
    except InspectError as exc:
        await websocket.send_text(error_frame(exc.code, exc.message))
        await websocket.close(CLOSE_UNAUTHORIZED if exc.status == 401 else 4404)
        return None
    return user, first


@router.websocket("/api/sessions/{session_id}/ws")
async def session_stream(websocket: WebSocket, session_id: str) -> None:
    await websocket.accept()
    auth = await authenticate(websocket, session_id)
    if auth is None:
        return
    user, first = auth
    after, cursor = _position(first, "after"), _position(first, "cursor")
    services = services_module.current()
    plane = services.plane
    subscription = await plane.hub.subscribe(session_channel(session_id))
    me = presence.person(user)
    services.metrics.websocket_clients.inc()
    try:
        snapshot = await asyncio.to_thread(plane.session_snapshot, session_id)
        if cursor >= 0:  # resuming (a reconnect, or after a resync): every row changed since, as it is now
            page, _, _ = await asyncio.to_thread(plane.events.changes, session_id, after=cursor, limit=500)
        elif after >= 0:
            page, _ = await asyncio.to_thread(plane.events.page, session_id, after=after, limit=500)
        else:
            page = await asyncio.to_thread(plane.recent_events, session_id, 100)
        await websocket.send_text(json.dumps({"type": "snapshot", **snapshot, "events": [e.to_dict() for e in page]}))
        await presence.announce(plane.hub, session_id, presence.Presence(event="join", user=me))
        # subscribed before the snapshot was read: what was written in between may be in both
        held = {e.seq: e.rev for e in page}
        forward = asyncio.create_task(_forward(websocket, subscription, held))
        try:
            await _receive(websocket, plane, session_id, user)
        finally:
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await forward
    except WebSocketDisconnect:
        pass
    finally:
        services.metrics.websocket_clients.dec()
        subscription.close()
        with contextlib.suppress(Exception):
            await presence.announce(plane.hub, session_id, presence.Presence(event="leave", user=me))


async def _forward(websocket: WebSocket, subscription: Any, held: dict[int, int]) -> None:
    """Send what the hub delivers (but what the snapshot's rows, ``held``: seq → rev, already gave).
    While the client keeps up, each frame leaves at once: one event alone, or what arrived together
    (one store commit) as a ``batch``. A client that is behind — more waited by the time its last
    frame was sent — gets its next frame at most ``FRAME_INTERVAL_S`` after the last, holding
    everything queued meanwhile, until it catches up. Each event is encoded once (by the publisher);
    a frame costs the server about the same for one or a hundred, and at hundreds of events per
    second per client the frames, not the events, are the load — so pacing is for the busy, never
    for the idle."""
    loop = asyncio.get_running_loop()
    last_sent, behind, past_snapshot = 0.0, False, False
    while True:
        first = await subscription.get()
        if first is None:
            return
        if behind:
            wait = last_sent + FRAME_INTERVAL_S - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frames = [first, *subscription.drain_nowait()]
        if not past_snapshot:
            frames, past_snapshot = not_in_snapshot(frames, held)
            if not frames:
                continue
        if len(frames) == 1:
            await websocket.send_text(frames[0])
        else:
            await websocket.send_text('{"type":"batch","events":[' + ",".join(frames) + "]}")
        last_sent, behind = loop.time(), subscription.waiting > 0


def not_in_snapshot(frames: list[str], held: dict[int, int]) -> tuple[list[str], bool]:
    """Of live frames that may predate the snapshot, those it does not hold: a stored event is held
    when the snapshot has its row (``held``: seq → rev) at its revision or later; a row it does not
    have (an older one updated, outside the page it sent) always passes, as do frames that are not
    stored events (presence, typing, resync). True once an event newer than every row of the
    snapshot came: the store publishes in revision order, so no later frame needs decoding."""
    newest = max(held.values(), default=0)
    kept: list[str] = []
    for i, frame in enumerate(frames):
        event = json.loads(frame)
        rev, seq = event.get("rev"), event.get("seq")
        if not isinstance(rev, int) or not isinstance(seq, int):
            kept.append(frame)
        elif rev > newest:
            return kept + frames[i:], True
        elif rev > held.get(seq, -1):
            kept.append(frame)
    return kept, False


async def _receive(websocket: WebSocket, plane: ControlPlane, session_id: str, user: User) -> None:
    while True:
        raw = await websocket.receive_text()
        if len(raw) > MAX_CLIENT_MESSAGE:
            await websocket.send_text(error_frame("too_large", f"messages are at most {MAX_CLIENT_MESSAGE} bytes"))
            continue
        try:
            message = json.loads(raw)
            kind = message.get("type") if isinstance(message, dict) else None
        except json.JSONDecodeError:
            kind = None
        if kind not in _ACTIONS:
            await websocket.send_text(
                error_frame("bad_message", "expected a JSON object with type prompt|stop|typing|presence")
            )
            continue
        try:
            reply = await _ACTIONS[kind](plane, session_id, user, message)
        except ValidationError as exc:
            first = exc.errors()[0]
            await websocket.send_text(
                error_frame("invalid_input", f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
            )
            continue
        except InspectError as exc:
            await websocket.send_text(error_frame(exc.code, exc.message))
            continue
        if reply is not None:
            await websocket.send_text(json.dumps(reply))


async def _prompt(plane: ControlPlane, session_id: str, user: User, message: dict[str, Any]) -> dict[str, Any]:
    body = PromptCreate.model_validate({k: v for k, v in message.items() if k != "type"})
    queued = await plane.submit_prompt(
        session_id=session_id,
        user=user,
        content=body.content,
        client_request_id=body.client_request_id,
        source="api",
        context=body.context,
        mode=body.mode,
        model=body.model,
    )
    return {
        "type": "prompt_accepted",
        "message_id": queued.message.id,
        "position": queued.position,
        "created": queued.created,
        "client_request_id": body.client_request_id,
    }


async def _stop(_plane: ControlPlane, session_id: str, user: User, _message: dict[str, Any]) -> None:
    await services_module.current().children.stop_parent(session_id, user)  # its children stop too


async def _typing(plane: ControlPlane, session_id: str, user: User, _message: dict[str, Any]) -> None:
    await plane.typing(session_id, presence.person(user))


async def _presence(plane: ControlPlane, session_id: str, user: User, _message: dict[str, Any]) -> None:
    await presence.announce(plane.hub, session_id, presence.Presence(event="here", user=presence.person(user)))


_ACTIONS = {"prompt": _prompt, "stop": _stop, "typing": _typing, "presence": _presence}
