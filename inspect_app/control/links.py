"""The live sandbox links of this server, and request/reply over them.

One registry owns which connection a session's sandbox is reached through: only ``attach`` and
``detach`` change it. A request (push this branch, settle for a snapshot) waits for its reply by
session and subject, not by connection, so a sandbox that reconnects while it works answers on its
new connection and the request still gets the answer. With several replicas, ``send``, ``reach`` and
``request`` go through the replica that serves a session's sandbox when it is not this one
(``peers.py``), which sends a request's answer back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from sandbox.protocol import encode

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0
SNAPSHOT_REPLY = "snapshot"  # the sandbox settled its tree (``snapshot_ready``)


def push_reply(branch: str) -> str:
    """The subject a push of ``branch`` is answered on (``push_complete`` / ``push_error``)."""
    return f"push:{branch}"


@dataclass
class SandboxLink:
    """A connected sandbox: how to send it a command."""

    session_id: str
    sandbox_id: str
    send_text: Callable[[str], Awaitable[None]]
    close: Callable[[], Awaitable[None]] | None = None  # ends this connection (a newer one replaced it)
    ready: bool = False
    previews: tuple[int, ...] = ()  # the ports its workspace declares (``.inspect/preview``)
    epoch: int = 0  # the owner's epoch this replica took the sandbox in when it connected

    async def send(self, message: BaseModel) -> bool:
        try:
            await asyncio.wait_for(self.send_text(encode(message)), SEND_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a dead socket: the caller requeues or waits for reconnect
            log.warning("send to sandbox %s failed: %s", self.sandbox_id, exc)
            return False
        return True


class NotLinked(Exception):
    """The session has no connected sandbox (or it did not take the command)."""


class Links:
    """Session id → its sandbox's live link (one each), with requests waiting for their replies."""

    def __init__(self) -> None:
        self._links: dict[str, SandboxLink] = {}
        self._waiting: dict[tuple[str, str], list[asyncio.Future[Any]]] = {}  # (session, subject) → requests
        # several replicas: a link through the replica that serves the session's sandbox (peers.py);
        # with ``reply``, the answer on that subject comes back here
        self.remote: Callable[..., Awaitable[SandboxLink | None]] | None = None

    def get(self, session_id: str) -> SandboxLink | None:
        return self._links.get(session_id)

    def ready(self, session_id: str) -> SandboxLink | None:
        """The session's link if its sandbox said it is ready for prompts."""
        link = self._links.get(session_id)
        return link if link is not None and link.ready else None

    async def reach(self, session_id: str) -> SandboxLink | None:
        """The session's link if its sandbox is ready for prompts: this replica's own, else one
        through the peer that serves it."""
        link = self._links.get(session_id)
        if link is None and self.remote is not None:
            link = await self.remote(session_id)
        return link if link is not None and link.ready else None

    def current(self, link: SandboxLink) -> bool:
        """Whether ``link`` is still its session's link (not replaced, not detached)."""
        return self._links.get(link.session_id) is link

    def items(self) -> list[tuple[str, SandboxLink]]:
        return list(self._links.items())

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._links

    def __getitem__(self, session_id: str) -> SandboxLink:
        return self._links[session_id]

    async def attach(self, link: SandboxLink) -> None:
        """``link`` is its session's live link now. One per session: an older connection still open is
        closed (a live sandbox reconnects), so a second connection can never leave the session with a
        link to nothing when it goes away. Requests waiting on the old one wait on, for the new one."""
        previous = self._links.get(link.session_id)
        self._links[link.session_id] = link
        if previous is None or previous is link or previous.close is None:
            return
        try:
            await asyncio.wait_for(previous.close(), 5)
        except Exception as exc:  # noqa: BLE001 - already gone: nothing to close
            log.info("closing the replaced link of %s: %s", link.session_id, exc)

    def detach(self, link: SandboxLink) -> bool:
        """``link``'s connection ended: forget it unless a newer one replaced it. True if it was current."""
        if self.current(link):
            del self._links[link.session_id]
            return True
        return False

    async def release(self, sandbox_id: str, epoch: int) -> None:
        """Another replica took ``sandbox_id`` over after ``epoch`` (this one's writes for it are
        refused): end this replica's link to it, held in that epoch or before, so the sandbox
        reconnects to where it is served now."""
        for session_id, link in list(self._links.items()):
            if link.sandbox_id == sandbox_id and link.epoch <= epoch:
                del self._links[session_id]
                log.warning("sandbox %s is served by another replica now: its link here is closed", sandbox_id)
                if link.close is not None:
                    try:
                        await asyncio.wait_for(link.close(), 5)
                    except Exception as exc:  # noqa: BLE001 - already gone: nothing to close
                        log.info("closing the stale link of %s: %s", session_id, exc)

    def drop(self, session_id: str) -> None:
        """The session's sandbox is stopped or lost: whatever link it had is no longer one."""
        self._links.pop(session_id, None)

    async def send(self, session_id: str, command: BaseModel) -> bool:
        """Send to the session's sandbox (through its peer when another replica serves it); False
        when it has no link or the send failed."""
        link = self._links.get(session_id)
        if link is None and self.remote is not None:
            link = await self.remote(session_id)
        return link is not None and await link.send(command)

    async def request(self, session_id: str, command: BaseModel, *, reply: str, timeout: float) -> Any:
        """Send ``command`` and wait for the sandbox's answer on ``reply`` (given to ``answer``).
        Raises ``NotLinked`` when it cannot be sent, ``TimeoutError`` when no answer came in time."""
        key = (session_id, reply)
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(waiter)  # before sending: the answer can be quick
        try:
            link = self._links.get(session_id)
            if link is None and self.remote is not None:  # the serving replica sends the answer back
                link = await self.remote(session_id, reply=reply, timeout=timeout)
            if link is None or not await link.send(command):
                raise NotLinked(f"the sandbox of session {session_id} is not connected")
            return await asyncio.wait_for(waiter, timeout)
        finally:
            waiters = self._waiting.get(key, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiting.pop(key, None)

    def fail(self, session_id: str, reply: str, error: Exception) -> int:
        """No answer will come on ``reply`` (the replica serving the sandbox says so)."""
        waiters = self._waiting.pop((session_id, reply), [])
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)
        return len(waiters)

    def answer(self, session_id: str, reply: str, value: Any) -> int:
        """A sandbox answered on ``reply``: every request waiting for it gets ``value``. How many did."""
        waiters = self._waiting.pop((session_id, reply), [])
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(value)
        return len(waiters)
