"""A minimal client of the Chrome DevTools Protocol: commands and events over one websocket.

Enough for one caller driving one page step by step (``screenshot.py``): ``call`` sends a command
and reads until its reply, keeping the events that arrive meanwhile; ``event`` hands out the first
unclaimed event of a kind, reading on until one comes. No reader task runs in the background, so
nothing outlives the connection, and the caller's timeout bounds every read.

Sessions are flat (``Target.attachToTarget`` with ``flatten``): a page's commands and events carry
its ``sessionId`` on the browser's one connection.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

MAX_MESSAGE = 256 << 20  # a screenshot comes back base64 in one message: 3840 x 16384 px fits
MAX_KEPT_EVENTS = 512  # unclaimed events kept; a page's few dozen until the one waited for


class DevToolsError(Exception):
    """The browser refused a command, could not be reached, or went away."""


@contextlib.asynccontextmanager
async def open_devtools(endpoint: str) -> AsyncIterator[DevTools]:
    """A connection to the browser's DevTools websocket (``ws://127.0.0.1:<port>/devtools/browser/…``)."""
    try:
        # proxy=None: the sandbox's proxy variables are for the internet, not for this loopback socket
        socket = await connect(endpoint, max_size=MAX_MESSAGE, proxy=None, compression=None)
    except (OSError, InvalidHandshake) as exc:
        raise DevToolsError(f"cannot reach Chromium's DevTools: {exc}") from exc
    async with socket:
        yield DevTools(socket)


class DevTools:
    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._last_id = 0
        self._events: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT_EVENTS)  # unclaimed, oldest first

    async def call(self, method: str, params: dict[str, Any] | None = None, *, session: str = "") -> dict[str, Any]:
        """Send ``method`` (to the page of ``session``, else to the browser) and return its result."""
        self._last_id += 1
        command: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        await self._socket.send(json.dumps(command))
        while (reply := await self._receive()).get("id") != command["id"]:
            pass
        if "error" in reply:
            error = reply["error"]
            reason = error.get("message", error) if isinstance(error, dict) else error
            raise DevToolsError(f"Chromium refused {method}: {reason}")
        result = reply.get("result", {})
        return result if isinstance(result, dict) else {}

    async def event(self, method: str, *, session: str) -> dict[str, Any]:
        """The params of the first unclaimed ``method`` event of ``session``, waiting for one."""
        for event in self._events:
            if _is(event, method, session):
                self._events.remove(event)
                return _params(event)
        while not _is(event := await self._receive(), method, session):
            pass
        self._events.remove(event)
        return _params(event)

    def forget_events(self) -> None:
        """Drop the unclaimed events: what is waited for from now on must come after this."""
        self._events.clear()

    async def _receive(self) -> dict[str, Any]:
        """The next message; an event is also kept for ``event``."""
        try:
            message = json.loads(await self._socket.recv())
        except ConnectionClosed:
            raise DevToolsError("Chromium closed its DevTools connection (did it crash?)") from None
        if not isinstance(message, dict):
            return {}
        if "method" in message:
            self._events.append(message)
        return message


def _is(event: dict[str, Any], method: str, session: str) -> bool:
    return event.get("method") == method and event.get("sessionId", "") == session


def _params(event: dict[str, Any]) -> dict[str, Any]:
    params = event.get("params", {})
    return params if isinstance(params, dict) else {}
