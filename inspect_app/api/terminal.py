"""A person's terminal into a session's sandbox.

- ``GET /terminal/<session id>``: the page (xterm.js, served from this checkout's ``.tools``);
  it asks for a client token for the session as the signed-in person, then opens the socket.
- ``/api/sessions/<id>/terminal`` (WebSocket): ``{"type": "subscribe", "token": …, "cols", "rows"}``
  first (as ``/ws``: a client or API token, so whoever may prompt the session may open it; with
  ``"terminal_id"``, one's own terminal whose page went away within the last minute is taken up
  again), then ``{"type": "opened", "terminal_id"}`` back, then
  ``{"type": "input", "data": <base64>}`` and ``{"type": "resize", "cols", "rows"}``; the server
  sends ``{"type": "status", "text"}`` while the sandbox starts, then ``{"type": "output", "data":
  <base64>}`` and finally ``{"type": "exit", "code", "reason"}``. The replica that serves the
  sandbox relays it (``control/terminals.py``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse

from inspect_app import services as services_module
from inspect_app.api.ws import authenticate, error_frame
from inspect_app.control.event_data import person
from inspect_app.control.terminals import Terminal
from inspect_app.db import PROJECT_ROOT
from inspect_app.errors import InspectError, NotFound
from sandbox.protocol import TerminalExit

router = APIRouter()
pages = APIRouter(include_in_schema=False)

READY_WAIT_S = 180.0
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
XTERM = PROJECT_ROOT / ".tools" / "xterm" / "node_modules" / "@xterm"
ASSETS = {
    "xterm.js": XTERM / "xterm" / "lib" / "xterm.js",
    "xterm.css": XTERM / "xterm" / "css" / "xterm.css",
    "addon-fit.js": XTERM / "addon-fit" / "lib" / "addon-fit.js",
}
PAGE = (Path(__file__).parent / "terminal_page.html").read_text()


@pages.get("/terminal/{session_id}")
async def terminal_page(session_id: str) -> HTMLResponse:
    # the id goes into the page's script: only an id's characters, and no "<" could ever reach it
    if not SESSION_ID.match(session_id):
        raise NotFound("no such session")
    page = PAGE.replace("{{SESSION_ID}}", json.dumps(session_id).replace("<", "\\u003c"))
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@pages.get("/terminal-assets/{name}")
async def terminal_asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None or not path.exists():
        raise NotFound(f"no {name} (run `make deps`)")
    return FileResponse(path, headers={"Cache-Control": "max-age=3600"})


@router.websocket("/api/sessions/{session_id}/terminal")
async def terminal(websocket: WebSocket, session_id: str) -> None:
    await websocket.accept()
    found = await authenticate(websocket, session_id)
    if found is None:
        return
    user, first = found
    plane = services_module.current().plane
    try:
        if not await _sandbox_here(websocket, session_id):
            return
        size = {k: _bounded(first.get(k), default) for k, default in (("cols", 80), ("rows", 24))}
        again = first.get("terminal_id")
        opened = plane.terminals.reattach(again, session_id, person(user)) if isinstance(again, str) else None
        if opened is None:
            opened = await plane.terminals.open(session_id, person(user), **size)
        else:
            await plane.terminals.resize(opened, size["cols"], size["rows"])
        await websocket.send_text(json.dumps({"type": "opened", "terminal_id": opened.terminal_id}))
    except InspectError as exc:
        await websocket.send_text(error_frame(exc.code, exc.message))
        await websocket.close()
        return
    except WebSocketDisconnect:
        return
    forward = asyncio.create_task(_forward(websocket, opened))
    try:
        await _receive(websocket, opened)
    except WebSocketDisconnect:
        pass
    finally:
        forward.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await forward
        plane.terminals.detach(opened)  # a reload takes it up again; else it closes in a minute


async def _sandbox_here(websocket: WebSocket, session_id: str) -> bool:
    """Start the session's sandbox if it sleeps and wait until it is ready on this replica."""
    plane = services_module.current().plane
    plane.warm(session_id)
    deadline = asyncio.get_running_loop().time() + READY_WAIT_S
    said = False
    while plane.links.ready(session_id) is None:
        if asyncio.get_running_loop().time() > deadline:
            await websocket.send_text(error_frame("sandbox_not_ready", "the sandbox did not become ready"))
            await websocket.close()
            return False
        if not said:
            await websocket.send_text(json.dumps({"type": "status", "text": "Starting the sandbox…"}))
            said = True
        await asyncio.sleep(0.5)
    return True


async def _forward(websocket: WebSocket, opened: Terminal) -> None:
    while True:
        message = await opened.outbox.get()
        if isinstance(message, TerminalExit):
            frame = {"type": "exit", "code": message.code, "reason": message.reason}
            await websocket.send_text(json.dumps(frame))
            await websocket.close()
            return
        await websocket.send_text(json.dumps({"type": "output", "data": message.data}))


async def _receive(websocket: WebSocket, opened: Terminal) -> None:
    plane = services_module.current().plane
    while True:
        try:
            message = json.loads(await websocket.receive_text())
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if message.get("type") == "input" and isinstance(message.get("data"), str):
            try:
                data = base64.b64decode(message["data"], validate=True)
            except (binascii.Error, ValueError):
                await websocket.send_text(error_frame("bad_input", "input is base64"))
                continue
            await plane.terminals.input(opened, data[: 64 * 1024])
        elif message.get("type") == "resize":
            cols, rows = _bounded(message.get("cols"), 80), _bounded(message.get("rows"), 24)
            await plane.terminals.resize(opened, cols, rows)


def _bounded(value: Any, default: int) -> int:
    return value if isinstance(value, int) and 2 <= value <= 1000 else default
