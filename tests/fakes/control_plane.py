"""A WebSocket server on loopback playing the control plane's side of the bridge, for sandbox tests.

It checks the sandbox token, records every message, acknowledges critical ones (storing each ack id
once, as the real control plane does), answers each handshake with the highest numbered event it got
(so the sandbox re-sends what did not arrive; each ``n`` is kept once), and lets a test send commands,
withhold acks, or drop the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from sandbox.protocol import RECEIVED_HEADER, AckCommand, ProtocolError, encode, parse_from_sandbox

Predicate = Callable[[list[BaseModel]], bool]


class FakeControlPlane:
    def __init__(self, *, token: str, sandbox_id: str) -> None:
        self.token = token
        self.sandbox_id = sandbox_id
        self.received: list[BaseModel] = []  # every parsed message, including re-sent duplicates
        self.unique: list[BaseModel] = []  # after de-duplication by number and ack id
        self.last_n = 0  # the highest numbered event received
        self.malformed: list[str] = []
        self.acked: set[str] = set()
        self.withhold_acks = False
        self.deaf = False  # frames arrive and are lost, as into a socket whose far end is already gone
        self.refuse_with: int | None = None
        self.connections = 0
        self._ws: ServerConnection | None = None
        self._server: Server | None = None
        self._changed = asyncio.Condition()

    async def start(self) -> FakeControlPlane:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._check,
            process_response=self._position,
            max_size=8 * 1024 * 1024,
        )
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/api/sandbox/ws"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def _check(self, _connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse_with is not None:
            return _connection.respond(HTTPStatus(self.refuse_with), "refused\n")
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.token}" or request.headers.get("X-Sandbox-ID") != self.sandbox_id:
            return _connection.respond(HTTPStatus.UNAUTHORIZED, "bad sandbox token\n")
        return None

    def _position(self, _connection: ServerConnection, _request: Request, response: Response) -> Response:
        if self.last_n:
            response.headers[RECEIVED_HEADER] = str(self.last_n)
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        self._ws = ws
        self.connections += 1
        try:
            await self._read(ws)
        except ConnectionClosed:
            pass  # the sandbox went away (or the test dropped it); it will reconnect
        finally:
            if self._ws is ws:
                self._ws = None

    async def _read(self, ws: ServerConnection) -> None:
        async for raw in ws:
            if self.deaf:
                continue
            try:
                message = parse_from_sandbox(raw)
            except ProtocolError as exc:
                self.malformed.append(str(exc))
                await ws.send(json.dumps({"type": "error", "code": "bad_message", "message": str(exc)}))
                continue
            await self._record(ws, message)

    async def _record(self, ws: ServerConnection, message: BaseModel) -> None:
        ack_id, n = getattr(message, "ack_id", None), getattr(message, "n", None)
        async with self._changed:
            self.received.append(message)
            again = (n is not None and n <= self.last_n) or (ack_id is not None and ack_id in self.acked)
            if not again:
                self.unique.append(message)
            self.last_n = max(self.last_n, n or 0)
            if ack_id is not None and not self.withhold_acks:
                self.acked.add(ack_id)
            self._changed.notify_all()
        if ack_id is not None and not self.withhold_acks:
            await ws.send(encode(AckCommand(ack_id=ack_id)))
        elif ack_id is not None:
            self.acked.add(ack_id)  # stored (de-duplicated) but not acknowledged: the sandbox will re-send

    # --- test API ------------------------------------------------------------------------------
    async def send(self, command: BaseModel | dict[str, Any] | str) -> None:
        await self.wait_connected()
        assert self._ws is not None
        if isinstance(command, BaseModel):
            raw = encode(command)
        elif isinstance(command, dict):
            raw = json.dumps(command)
        else:
            raw = command
        await self._ws.send(raw)

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def wait_connected(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self._ws is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the sandbox did not connect")
            await asyncio.sleep(0.05)

    async def drop(self) -> None:
        """Cut the connection as a network failure would (no close handshake)."""
        if self._ws is not None:
            self._ws.transport.abort()
            self._ws = None

    async def wait_for(self, predicate: Predicate, timeout: float = 60, what: str = "condition") -> list[BaseModel]:
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not predicate(self.unique):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    kinds = [getattr(m, "type", "?") for m in self.unique][-30:]
                    raise TimeoutError(f"timed out waiting for {what}; last messages: {kinds}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        return self.unique

    async def wait_type(self, kind: str, timeout: float = 60, **fields: Any) -> BaseModel:
        def match(messages: list[BaseModel]) -> bool:
            return any(self._matches(m, kind, fields) for m in messages)

        await self.wait_for(match, timeout, what=f"{kind} {fields}")
        return next(m for m in self.unique if self._matches(m, kind, fields))

    @staticmethod
    def _matches(message: BaseModel, kind: str, fields: dict[str, Any]) -> bool:
        return getattr(message, "type", None) == kind and all(getattr(message, k, None) == v for k, v in fields.items())

    def of_type(self, kind: str, *, unique: bool = True) -> list[Any]:
        return [m for m in (self.unique if unique else self.received) if getattr(m, "type", None) == kind]
