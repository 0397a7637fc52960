"""``/api/sandbox/ws``: where sandboxes connect (the bridge protocol, ARCHITECTURE §4)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from inspect_app import services as services_module
from inspect_app.control.data import sandboxes
from inspect_app.control.links import SandboxLink
from inspect_app.control.sandbox_link import SandboxConnection
from inspect_app.models import SandboxStatus
from sandbox.protocol import (
    CLOSE_GONE,
    CLOSE_REPLACED,
    CLOSE_UNAUTHORIZED,
    RECEIVED_HEADER,
    ControlError,
    ProtocolError,
    encode,
    parse_from_sandbox,
)

router = APIRouter(tags=["sandbox"])
log = logging.getLogger(__name__)


@router.websocket("/api/sandbox/ws")
async def sandbox_socket(websocket: WebSocket) -> None:
    session_id = websocket.query_params.get("session", "")
    sandbox_id = websocket.headers.get("x-sandbox-id", "")
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    plane = services_module.current().plane
    row, why = await asyncio.to_thread(
        sandboxes.authenticate, plane.engine, sandbox_id=sandbox_id, session_id=session_id, token=token.strip()
    )
    if row is None or scheme.lower() != "bearer":
        await websocket.accept()
        code = CLOSE_GONE if why == "gone" else CLOSE_UNAUTHORIZED
        await websocket.close(code, "sandbox stopped or replaced" if why == "gone" else "invalid sandbox token")
        return

    async def replaced() -> None:
        await websocket.close(CLOSE_REPLACED, "replaced by a newer connection")

    link = SandboxLink(session_id=session_id, sandbox_id=row.id, send_text=websocket.send_text, close=replaced)
    connection = SandboxConnection(plane, link)
    received = await connection.open()
    # what of this sandbox's numbered events we have: it sends again what it sent after that
    await websocket.accept(headers=[(RECEIVED_HEADER.lower().encode(), str(received).encode())] if received else None)
    if row.status == SandboxStatus.SPAWNING:
        await asyncio.to_thread(sandboxes.set_status, plane.engine, row.id, SandboxStatus.CONNECTED)
    await plane.links.attach(link)
    try:
        while True:
            raw = await websocket.receive_text()
            try:
                message = parse_from_sandbox(raw)
            except ProtocolError as exc:
                log.warning("sandbox %s sent a malformed message: %s", row.id, exc)
                await websocket.send_text(encode(ControlError(code="bad_message", message=str(exc))))
                continue
            try:
                await connection.handle(message)
            except Exception:
                log.exception("handling %s from sandbox %s failed", message.type, row.id)
    except WebSocketDisconnect:
        pass
    finally:
        await connection.closed()
