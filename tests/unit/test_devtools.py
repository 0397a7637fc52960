"""The DevTools client against a scripted browser on a loopback websocket: replies matched to their
commands, events kept until claimed (per session), refusals and a vanished browser as errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from sandbox.runtime.devtools import DevToolsError, open_devtools

pytestmark = pytest.mark.timeout(20)

Script = Callable[[dict[str, Any]], list[dict[str, Any]]]  # a command -> the messages sent back


@contextlib.asynccontextmanager
async def browser(script: Script) -> AsyncIterator[str]:
    async def handle(connection: ServerConnection) -> None:
        async for raw in connection:
            for message in script(json.loads(raw)):
                if message.get("close"):
                    await connection.close()
                    return
                await connection.send(json.dumps(message))

    async with serve(handle, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/devtools/browser/test"


def page_script(command: dict[str, Any]) -> list[dict[str, Any]]:
    """Navigation: load events of another page and of ours come before the reply, as Chromium may send them."""
    ident, method = command["id"], command["method"]
    if method == "Page.navigate":
        return [
            {"method": "Page.loadEventFired", "sessionId": "other", "params": {"timestamp": 1}},
            {"method": "Page.loadEventFired", "sessionId": command["sessionId"], "params": {"timestamp": 2}},
            {"id": ident, "result": {"frameId": "f1"}},
        ]
    if method == "Page.crash":
        return [{"close": True}]
    return [{"id": ident, "error": {"code": -32601, "message": f"'{method}' wasn't found"}}]


async def test_events_that_come_before_a_reply_are_kept_for_their_session() -> None:
    async with browser(page_script) as endpoint, open_devtools(endpoint) as tools:
        assert await tools.call("Page.navigate", {"url": "http://x/"}, session="s1") == {"frameId": "f1"}
        assert await tools.event("Page.loadEventFired", session="s1") == {"timestamp": 2}
        assert await tools.event("Page.loadEventFired", session="other") == {"timestamp": 1}
        await tools.call("Page.navigate", {"url": "http://x/"}, session="s1")
        tools.forget_events()  # as before a navigation: what came earlier is not the next page's
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(tools.event("Page.loadEventFired", session="s1"), 0.2)


async def test_a_refused_command_is_an_error_naming_it() -> None:
    async with browser(page_script) as endpoint, open_devtools(endpoint) as tools:
        with pytest.raises(DevToolsError, match=r"refused Nope\.nothing: 'Nope\.nothing' wasn't found"):
            await tools.call("Nope.nothing", session="s1")


async def test_a_browser_that_goes_away_is_an_error_not_a_hang() -> None:
    async with browser(page_script) as endpoint, open_devtools(endpoint) as tools:
        with pytest.raises(DevToolsError, match="closed its DevTools connection"):
            await tools.call("Page.crash", session="s1")


async def test_an_unreachable_browser_is_an_error() -> None:
    with pytest.raises(DevToolsError, match="cannot reach Chromium's DevTools"):
        async with open_devtools("ws://127.0.0.1:9/devtools/browser/none"):
            pass
