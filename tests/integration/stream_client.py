"""A WebSocket client of a session's public stream, for tests against the real server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from tests.fakes.llm_server import ToolCall as LLMToolCall
from tests.servers import RunningServer


def bash(command: str) -> LLMToolCall:
    return LLMToolCall("bash", {"command": command, "description": "run a command"})


class Client:
    """A WebSocket client of the session stream, recording everything it receives."""

    def __init__(self, server: RunningServer, session_id: str, token: str) -> None:
        self.url = server.url.replace("http://", "ws://") + f"/api/sessions/{session_id}/ws"
        self.token = token
        self.received: list[dict[str, Any]] = []
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Client:
        self._ws = await websockets.connect(self.url, open_timeout=10)
        await self._ws.send(json.dumps({"type": "subscribe", "token": self.token}))
        self._reader = asyncio.create_task(self._read())
        await self.wait(lambda m: m["type"] == "snapshot", "snapshot")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._reader:
            self._reader.cancel()
        await self._ws.close()

    async def _read(self) -> None:
        async for raw in self._ws:
            frame = json.loads(raw)
            self.received.extend(frame["events"] if frame.get("type") == "batch" else [frame])

    async def send(self, message: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(message))

    async def wait(self, predicate: Any, what: str, timeout: float = 90) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for message in self.received:
                if predicate(message):
                    return message
            if asyncio.get_running_loop().time() > deadline:
                kinds = [m.get("type") for m in self.received][-25:]
                raise TimeoutError(f"no {what}; last: {kinds}")
            await asyncio.sleep(0.05)

    @property
    def subscribed_at(self) -> int:
        """The newest seq its snapshot held: what came before it subscribed is not in its live stream."""
        snapshot = next(m for m in self.received if m["type"] == "snapshot")
        return max([0, *(int(e["seq"]) for e in snapshot.get("events", []))])

    def stored(self) -> list[tuple[int, str, str | None]]:
        """Stored events seen live (seq, type, message id), excluding rows updated in place (token
        deltas of the text rows, tool calls, a boot step's "still running" line)."""
        return [
            (m["seq"], m["type"], m.get("message_id"))
            for m in self.received
            if "seq" in m
            and m["type"] not in ("token", "tool_call", "text")
            and (m.get("data") or {}).get("status") != "running"
        ]
