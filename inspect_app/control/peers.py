"""The link registry's remote transport: a session whose sandbox another replica serves is reached
through that replica.

Each replica listens on a hub channel of its own (``replica:<id>``). A command for a sandbox a peer
serves is published there, after everything this replica has queued in the event store is written
(a prompt's ``prompt_started`` must be stored before the sandbox's first answer, which the peer
writes). The peer checks what it receives as it would a command of its own — a bridge command, for
the sandbox it serves for that session — and sends it on its link. A peer that stopped beating is
not sent anything: its sandboxes are adopted by a living replica first (``data/replicas.py``).

Sending is one-way, as a send on a local socket is: a command that arrives after the sandbox's link
went away is dropped there, and the peer's own rules apply (a reconnecting sandbox is sent the
prompt it was running again; a lost one fails it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from functools import partial

import sqlalchemy as sa

from inspect_app.control.data import replicas
from inspect_app.control.hub import RESYNC, Hub, Subscription
from inspect_app.control.links import Links, SandboxLink
from sandbox.protocol import ProtocolError, parse_from_control

log = logging.getLogger(__name__)


def replica_channel(replica_id: str) -> str:
    return f"replica:{replica_id}"


class Peers:
    def __init__(
        self,
        *,
        engine: sa.Engine,
        hub: Hub,
        links: Links,
        replica_id: str,
        timeout_s: float,
        written: Callable[[], Awaitable[None]],
    ) -> None:
        self._engine = engine
        self._hub = hub
        self._links = links
        self.replica_id = replica_id
        self._timeout_s = timeout_s
        self._written = written
        self._subscription: Subscription | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._subscription = await self._hub.subscribe(replica_channel(self.replica_id))
        self._reader = asyncio.create_task(self._read(self._subscription), name="peer-commands")
        self._links.remote = self.link

    async def close(self) -> None:
        self._links.remote = None
        if self._subscription is not None:
            self._subscription.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def link(self, session_id: str) -> SandboxLink | None:
        """A link to the session's sandbox through the living peer that serves it; None when this
        replica serves it (or nobody does)."""
        found = await asyncio.to_thread(replicas.serving, self._engine, session_id, self._timeout_s)
        if found is None or found.replica_id == self.replica_id:
            return None
        forward = partial(self._forward, found.replica_id, session_id, found.sandbox_id)
        return SandboxLink(session_id=session_id, sandbox_id=found.sandbox_id, send_text=forward, ready=found.ready)

    async def _forward(self, replica_id: str, session_id: str, sandbox_id: str, text: str) -> None:
        await self._written()
        payload = json.dumps({"session": session_id, "sandbox": sandbox_id, "command": text})
        await self._hub.publish(replica_channel(replica_id), payload)

    async def _read(self, subscription: Subscription) -> None:
        async for payload in subscription:
            if payload == RESYNC:  # commands that overflowed are gone, as on a socket that died
                log.warning("peer commands fell behind; some were dropped")
                continue
            try:
                await self._deliver(payload)
            except Exception:  # one bad command must not stop the next
                log.exception("a peer's command could not be handled")

    async def _deliver(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            session_id, sandbox_id, text = message["session"], message["sandbox"], message["command"]
            command = parse_from_control(text)
        except (ValueError, KeyError, TypeError, ProtocolError) as exc:
            log.warning("refused a peer's command: %s", exc)
            return
        link = self._links.get(session_id)
        if link is None or link.sandbox_id != sandbox_id:
            log.info("a peer's %s for sandbox %s: not linked here (any more)", command.type, sandbox_id)
            return
        await link.send(command)
