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
prompt it was running again; a lost one fails it). A request (push a branch) names its subject, the
asking replica and a timeout: the serving replica waits for the sandbox's answer and publishes it
(or "not linked", "timeout") on the asker's channel, where ``Links.request`` is waiting.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from inspect_app.control.data import replicas
from inspect_app.control.hub import RESYNC, Hub, Subscription
from inspect_app.control.links import Links, NotLinked, SandboxLink
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
        self._requests: set[asyncio.Task[None]] = set()  # peers' requests waiting for a sandbox here

    async def start(self) -> None:
        self._subscription = await self._hub.subscribe(replica_channel(self.replica_id))
        self._reader = asyncio.create_task(self._read(self._subscription), name="peer-commands")
        self._links.remote = self.link

    async def close(self) -> None:
        self._links.remote = None
        if self._subscription is not None:
            self._subscription.close()
        for task in [*self._requests, *([self._reader] if self._reader else [])]:
            task.cancel()
        await asyncio.gather(*self._requests, *([self._reader] if self._reader else []), return_exceptions=True)

    async def link(self, session_id: str, *, reply: str = "", timeout: float = 0) -> SandboxLink | None:
        """A link to the session's sandbox through the living peer that serves it; None when this
        replica serves it (or nobody does). With ``reply``, the peer waits up to ``timeout`` for the
        sandbox's answer on that subject and sends it back (``Links.request`` gets it here)."""
        found = await asyncio.to_thread(replicas.serving, self._engine, session_id, self._timeout_s)
        if found is None or found.replica_id == self.replica_id:
            return None
        head: dict[str, Any] = {"session": session_id, "sandbox": found.sandbox_id}
        if reply:
            head |= {"reply": reply, "from": self.replica_id, "timeout": timeout}
        forward = partial(self._forward, found.replica_id, head)
        return SandboxLink(session_id=session_id, sandbox_id=found.sandbox_id, send_text=forward, ready=found.ready)

    async def _forward(self, replica_id: str, head: dict[str, Any], text: str) -> None:
        await self._written()
        await self._hub.publish(replica_channel(replica_id), json.dumps({**head, "command": text}))

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
            if "answer" in message:  # to a request of ours, from the replica serving the sandbox
                self._answered(message)
                return
            session_id, sandbox_id, text = message["session"], message["sandbox"], message["command"]
            command = parse_from_control(text)
            reply, asker, timeout = str(message.get("reply", "")), message.get("from"), message.get("timeout", 0)
            if reply and not (isinstance(asker, str) and isinstance(timeout, int | float) and 0 < timeout <= 3600):
                raise ValueError("a request needs its asker and a timeout of at most an hour")
        except (ValueError, KeyError, TypeError, ProtocolError) as exc:
            log.warning("refused a peer's command: %s", exc)
            return
        link = self._links.get(session_id)
        if link is None or link.sandbox_id != sandbox_id:
            log.info("a peer's %s for sandbox %s: not linked here (any more)", command.type, sandbox_id)
            if reply:
                await self._send_answer(str(asker), session_id, reply, error="not_linked")
            return
        if not reply:
            await link.send(command)
            return
        task = asyncio.create_task(self._request(str(asker), session_id, command, reply, float(timeout)))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _request(self, asker: str, session_id: str, command: BaseModel, reply: str, timeout: float) -> None:
        """A peer's request of a sandbox served here: ask it, and send the answer (or why none) back."""
        try:
            value = await self._links.request(session_id, command, reply=reply, timeout=timeout)
        except NotLinked:
            await self._send_answer(asker, session_id, reply, error="not_linked")
        except TimeoutError:
            await self._send_answer(asker, session_id, reply, error="timeout")
        else:
            await self._send_answer(asker, session_id, reply, value=value)

    async def _send_answer(
        self, asker: str, session_id: str, reply: str, *, value: Any = None, error: str = ""
    ) -> None:
        answer = {"answer": reply, "session": session_id, "value": value, "error": error}
        await self._hub.publish(replica_channel(asker), json.dumps(answer))

    def _answered(self, message: dict[str, Any]) -> None:
        session_id, reply, error = str(message["session"]), str(message["answer"]), message.get("error")
        if error == "timeout":
            self._links.fail(session_id, reply, TimeoutError(f"no answer on {reply}"))
        elif error:
            self._links.fail(session_id, reply, NotLinked(f"the sandbox of session {session_id} is not connected"))
        else:
            self._links.answer(session_id, reply, message.get("value"))
