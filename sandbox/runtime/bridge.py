"""The sandbox's end of the bridge: one authenticated WebSocket to the control plane.

Invariants:
- ``send`` never blocks and never fails: messages wait in the outbox while the socket is down;
- every event but ``ready`` and ``heartbeat`` is numbered in send order; the last ``WINDOW`` sent are
  kept, and after a reconnect those past the control plane's ``X-Bridge-Received`` are sent again
  (a frame written into a socket that was already dead never arrived; the plane drops duplicates);
- critical messages are stamped with an ack id and re-sent after every reconnect until acked;
- on each (re)connect the bridge sends ``ready`` (once the sandbox has booted), then the events the
  control plane did not receive, then the unacknowledged critical messages, then the outbox in order;
- a refusal (HTTP 401/403/410 at the handshake, or a terminal close code) ends ``run`` for good;
  anything else reconnects with capped exponential backoff;
- a malformed control message is answered with an ``error`` and the connection stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable

import websockets
from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from sandbox.protocol import (
    MAX_MESSAGE_BYTES,
    RECEIVED_HEADER,
    TERMINAL_CLOSE_CODES,
    TERMINAL_HTTP_STATUSES,
    AckCommand,
    ControlMessage,
    Heartbeat,
    ProtocolError,
    Ready,
    SandboxError,
    encode,
    parse_from_control,
)
from sandbox.runtime.acks import AckBuffer, is_critical

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 50_000
WINDOW = 5_000  # sent events kept for a re-send (tokens are small: about a megabyte at most)
OPEN_TIMEOUT_S = 10.0
SEND_TIMEOUT_S = 10.0


class BridgeRefused(RuntimeError):
    """The control plane refused this sandbox for good."""


class Bridge:
    def __init__(
        self,
        *,
        url: str,
        token: str,
        sandbox_id: str,
        on_command: Callable[[ControlMessage], Awaitable[None]],
        ready: Callable[[], Awaitable[Ready | None]],
        status: Callable[[], Heartbeat],
        heartbeat_s: float = 30.0,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 10.0,
    ) -> None:
        self.identify(url=url, token=token, sandbox_id=sandbox_id)
        self._on_command = on_command
        self._ready = ready
        self._status = status
        self._heartbeat_s = heartbeat_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._acks = AckBuffer()
        self._outbox: deque[BaseModel] = deque()
        self._sent: deque[BaseModel] = deque(maxlen=WINDOW)  # numbered events written to a socket
        self._numbered = 0
        self._dropped = 0
        self._wakeup = asyncio.Event()
        self._ws: ClientConnection | None = None
        self.connected = asyncio.Event()
        self.connections = 0

    # --- API for the rest of the sandbox -------------------------------------------------------
    def send(self, message: BaseModel) -> None:
        critical = is_critical(message)
        if not critical and len(self._outbox) >= OUTBOX_LIMIT:
            self._dropped += 1
            return
        if "n" in type(message).model_fields:
            self._numbered += 1
            message = message.model_copy(update={"n": self._numbered})
        if critical:
            message = self._acks.record(message)
        self._outbox.append(message)
        self._wakeup.set()

    def identify(self, *, url: str, token: str, sandbox_id: str) -> None:
        """Who this sandbox is, learned late by a pooled sandbox (before ``run``; the outbox stays)."""
        self._url = url
        # no token: the bridge's relay presents the sandbox's identity on its way out
        self._headers = {"X-Sandbox-ID": sandbox_id, **({"Authorization": f"Bearer {token}"} if token else {})}

    @property
    def backlog(self) -> int:
        """Messages waiting to be written (a stream that fills it waits: ``tunnels.py``)."""
        return len(self._outbox)

    @property
    def unacknowledged(self) -> int:
        return len(self._acks)

    async def announce_ready(self) -> None:
        """Send ``ready`` now if connected (it is also sent on every reconnect)."""
        ws = self._ws
        ready = await self._ready()
        if ws is not None and ready is not None:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                await asyncio.wait_for(ws.send(encode(ready)), SEND_TIMEOUT_S)

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 5)

    # --- connection loop -----------------------------------------------------------------------
    async def run(self) -> None:
        """Stay connected until refused (raises BridgeRefused) or cancelled."""
        delay = self._backoff_initial_s
        while True:
            try:
                async with websockets.connect(
                    self._url,
                    additional_headers=self._headers,
                    open_timeout=OPEN_TIMEOUT_S,
                    max_size=MAX_MESSAGE_BYTES,
                ) as ws:
                    delay = self._backoff_initial_s
                    await self._serve(ws)
            except InvalidStatus as exc:
                if exc.response.status_code in TERMINAL_HTTP_STATUSES:
                    raise BridgeRefused(f"control plane answered HTTP {exc.response.status_code}") from None
                log.warning("bridge handshake failed: HTTP %s", exc.response.status_code)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                if code in TERMINAL_CLOSE_CODES:
                    reason = exc.rcvd.reason if exc.rcvd else ""
                    raise BridgeRefused(f"control plane closed the bridge ({code}: {reason})") from None
                log.info("bridge closed (%s); reconnecting", code)
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                # InvalidHandshake: e.g. the relay took the connection and its far end was gone (the
                # server restarting) — the socket closed before any HTTP answer; it will come back
                log.info("bridge connect failed: %s", exc)
            finally:
                self._ws = None
                self.connected.clear()
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, self._backoff_max_s)

    async def _serve(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.connections += 1
        ready = await self._ready()
        if ready is not None:
            await ws.send(encode(ready))
        resent: set[str | None] = set()
        # What an earlier connection wrote that the control plane says it never got, in order.
        for message in self._unreceived(ws):
            await ws.send(encode(message))
            resent.add(getattr(message, "ack_id", None))
        # Then what was sent and nobody acknowledged — it was sent before anything still in the
        # outbox, so order holds. A critical message not sent yet keeps its place in the outbox
        # (sent ahead of the tokens before it, the answer would end before it did).
        waiting = {getattr(message, "ack_id", None) for message in self._outbox}
        for message in self._acks.pending():
            if message.ack_id in waiting or message.ack_id in resent:  # type: ignore[attr-defined]
                continue
            await ws.send(encode(message))
            resent.add(message.ack_id)  # type: ignore[attr-defined]
        self.connected.set()
        tasks = {
            asyncio.create_task(self._receive(ws)),
            asyncio.create_task(self._send_loop(ws, resent)),
            asyncio.create_task(self._heartbeat(ws)),
        }
        try:
            # whichever ends first (the socket closed under the receiver or a sender) ends this connection
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None and not isinstance(error, ConnectionClosed | TimeoutError | OSError):
                raise error
        await ws.close()
        if ws.close_code in TERMINAL_CLOSE_CODES:
            raise BridgeRefused(f"control plane closed the bridge ({ws.close_code}: {ws.close_reason})")

    def _unreceived(self, ws: ClientConnection) -> list[BaseModel]:
        """The sent events past what the control plane says it received (none when it does not say:
        a control plane that restarted knows nothing, and a duplicate token would show twice)."""
        answer = ws.response.headers.get(RECEIVED_HEADER, "") if ws.response is not None else ""
        if not answer.isdigit():
            return []
        received = int(answer)
        missing = [m for m in self._sent if (getattr(m, "n", None) or 0) > received]
        oldest = getattr(self._sent[0], "n", 0) if self._sent else received + 1
        if oldest > received + 1:
            log.warning("events %d to %d were lost: they are past the re-send window", received + 1, oldest - 1)
        if missing:
            log.info("sending again %d events the control plane did not receive", len(missing))
        return missing

    async def _send_loop(self, ws: ClientConnection, resent: set[str | None]) -> None:
        while True:
            while not self._outbox:
                self._wakeup.clear()
                await self._wakeup.wait()
            message = self._outbox[0]
            ack_id = getattr(message, "ack_id", None)
            if ack_id is not None and (ack_id in resent or ack_id not in self._acks):
                self._outbox.popleft()  # already re-sent on this connection, or already acknowledged
                continue
            await asyncio.wait_for(ws.send(encode(message)), SEND_TIMEOUT_S)
            self._outbox.popleft()  # removed only once sent, so a drop mid-send loses nothing
            if getattr(message, "n", None) is not None:
                self._sent.append(message)  # written, not yet known to have arrived

    async def _heartbeat(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            await asyncio.wait_for(ws.send(encode(self._status())), SEND_TIMEOUT_S)

    async def _receive(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                command = parse_from_control(raw)
            except ProtocolError as exc:
                log.warning("malformed control message: %s", exc)
                await ws.send(encode(SandboxError(code="bad_message", message=str(exc))))
                continue
            if isinstance(command, AckCommand):
                self._acks.ack(command.ack_id)
                continue
            try:
                await self._on_command(command)
            except Exception as exc:
                log.exception("command %s failed", command.type)
                self.send(SandboxError(code="command_failed", message=f"{command.type}: {exc}"))
