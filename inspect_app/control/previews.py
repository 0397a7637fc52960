"""Live previews: a session's declared ports, served at an origin of their own.

A preview runs agent-written JavaScript, so it never shares the app's origin: each is served at
``http://<session>-<port>.<preview domain>:<preview port>/`` by the preview server
(``api/preview_server.py``), which relays each browser connection, bytes as they are, to the port
inside the sandbox (``sandbox/runtime/tunnels.py``) over the sandbox's bridge. No cookie of the app
reaches that origin; a person gets one of the preview's own through the app:

1. the session page links ``/api/sessions/<id>/previews/<port>`` (the app's origin, signed in);
2. that answers with a redirect to the preview origin carrying an *entry pass* (a minute's life);
3. the preview server trades the pass for a cookie of its origin (a *visit pass*, hours long),
   good for that session's port and no other.

Passes are HMAC-signed (a key derived from the server's secret), so any replica checks them
without a database read. Here: the passes, and the tunnels this replica relays.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from inspect_app.errors import Conflict
from sandbox.protocol import MAX_TUNNEL_CHUNK, TunnelClose, TunnelData, TunnelOpen

ENTRY_S = 60  # an entry pass: from the session page's link to the preview's first answer
VISIT_S = 4 * 3600  # a visit pass (the preview origin's cookie): a working session's length
INBOX_BYTES = 2 * 1024 * 1024  # from the sandbox, waiting for a slow browser; past that the stream is closed
MAX_PER_SESSION = 32  # streams open at once into one session's previews (a browser opens about six)
HOST = re.compile(r"^(?P<session>[a-z0-9]{1,32})-(?P<port>[0-9]{1,5})\.")
TOUCH_EVERY_S = 30.0


def preview_host(session_id: str, port: int, domain: str) -> str:
    return f"{session_id}-{port}.{domain}"


def parse_host(host: str) -> tuple[str, int] | None:
    """The session and port a preview origin's host names (``<session>-<port>.<domain>``)."""
    found = HOST.match(host.lower())
    if found is None or not 1 <= int(found["port"]) <= 65535:
        return None
    return found["session"], int(found["port"])


@dataclass(frozen=True)
class Pass:
    kind: str  # entry | visit
    session_id: str
    port: int
    user_id: int
    expires: int  # unix seconds


class Passes:
    def __init__(self, secret: bytes) -> None:
        # a key of its own: a pass can never be mistaken for anything else the secret signs
        self._key = hmac.new(secret, b"inspect preview pass", hashlib.sha256).digest()

    def issue(self, kind: str, session_id: str, port: int, user_id: int) -> str:
        life = ENTRY_S if kind == "entry" else VISIT_S
        body = json.dumps([kind, session_id, port, user_id, int(time.time()) + life], separators=(",", ":"))
        payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def check(self, token: str, kind: str, session_id: str, port: int) -> Pass | None:
        """The pass if it is genuine, unexpired, of this kind and for this session's port."""
        payload, _, signature = token.partition(".")
        if not payload or not token.isascii() or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            found = Pass(*json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
        except (ValueError, TypeError):
            return None
        if (found.kind, found.session_id, found.port) != (kind, session_id, port) or found.expires < time.time():
            return None
        return found

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass
class Tunnel:
    tunnel_id: str
    session_id: str
    inbox: asyncio.Queue[bytes | TunnelClose] = field(default_factory=asyncio.Queue)
    queued: int = 0  # bytes in the inbox (bounded by INBOX_BYTES)


class Tunnels:
    """The preview streams this replica relays (it serves their sandboxes)."""

    def __init__(
        self, *, send: Callable[[str, BaseModel], Awaitable[bool]], touch: Callable[[str], Awaitable[None]]
    ) -> None:
        self._send = send  # to a session's sandbox, if this replica serves it
        self._touch = touch  # someone is using the session
        self._open: dict[str, Tunnel] = {}
        self._touched: dict[str, float] = {}  # when a session's previews last got a browser's bytes
        self._closing: set[asyncio.Task[bool]] = set()

    def active_in(self, session_id: str, within_s: float) -> bool:
        """Someone is using the session's previews: a stream is open and its browser sent something
        within ``within_s`` (a tab left open on a page with a live socket is not someone working)."""
        recent = time.monotonic() - self._touched.get(session_id, float("-inf")) < within_s
        return recent and any(t.session_id == session_id for t in self._open.values())

    async def open(self, session_id: str, port: int) -> Tunnel:
        if sum(t.session_id == session_id for t in self._open.values()) >= MAX_PER_SESSION:
            raise Conflict(f"at most {MAX_PER_SESSION} preview connections at once", code="too_many_connections")
        tunnel = Tunnel(secrets.token_hex(8), session_id)
        self._open[tunnel.tunnel_id] = tunnel
        if not await self._send(session_id, TunnelOpen(tunnel_id=tunnel.tunnel_id, port=port)):
            self._open.pop(tunnel.tunnel_id, None)
            raise Conflict("the sandbox is not connected; try again in a moment", code="sandbox_not_ready")
        await self._used(session_id)
        return tunnel

    async def _used(self, session_id: str) -> None:
        now = time.monotonic()
        if now - self._touched.get(session_id, float("-inf")) > TOUCH_EVERY_S:  # using a preview is activity
            self._touched[session_id] = now
            await self._touch(session_id)

    async def receive(self, tunnel: Tunnel) -> bytes | TunnelClose:
        """The stream's next bytes from the port, or its end."""
        item = await tunnel.inbox.get()
        if isinstance(item, bytes):
            tunnel.queued -= len(item)
        return item

    async def write(self, tunnel: Tunnel, data: bytes) -> bool:
        """To the port; False once the stream is gone."""
        await self._used(tunnel.session_id)
        for start in range(0, len(data), MAX_TUNNEL_CHUNK):
            chunk = base64.b64encode(data[start : start + MAX_TUNNEL_CHUNK]).decode()
            if tunnel.tunnel_id not in self._open or not await self._send(
                tunnel.session_id, TunnelData(tunnel_id=tunnel.tunnel_id, data=chunk)
            ):
                return False
        return True

    async def close(self, tunnel: Tunnel) -> None:
        if self._open.pop(tunnel.tunnel_id, None) is not None:
            await self._send(tunnel.session_id, TunnelClose(tunnel_id=tunnel.tunnel_id))

    def deliver(self, session_id: str, message: TunnelData | TunnelClose) -> None:
        """What a sandbox sent a stream (ignored unless it is that sandbox's own stream)."""
        tunnel = self._open.get(message.tunnel_id)
        if tunnel is None or tunnel.session_id != session_id:
            return
        if isinstance(message, TunnelClose):
            self._open.pop(message.tunnel_id, None)
            tunnel.inbox.put_nowait(message)
            return
        try:
            data = base64.b64decode(message.data, validate=True)
        except ValueError:
            return
        if tunnel.queued + len(data) > INBOX_BYTES:  # the browser stopped reading: end it, hold nothing
            self._end(tunnel, "the browser fell behind")
            return
        tunnel.queued += len(data)
        tunnel.inbox.put_nowait(data)

    def ended(self, session_id: str) -> None:
        """The session's bridge went away: its streams end (the sandbox ends its side when it
        connects again)."""
        for tunnel in [t for t in self._open.values() if t.session_id == session_id]:
            self._end(tunnel, "the sandbox stopped", tell_sandbox=False)

    def _end(self, tunnel: Tunnel, reason: str, *, tell_sandbox: bool = True) -> None:
        """End a stream from here: its browser is told (after what is already queued is dropped)."""
        if self._open.pop(tunnel.tunnel_id, None) is None:
            return
        while not tunnel.inbox.empty():
            tunnel.inbox.get_nowait()
        tunnel.queued = 0
        tunnel.inbox.put_nowait(TunnelClose(tunnel_id=tunnel.tunnel_id, reason=reason))
        if tell_sandbox:  # and the sandbox, so that it stops reading the port
            closing = asyncio.ensure_future(self._send(tunnel.session_id, TunnelClose(tunnel_id=tunnel.tunnel_id)))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
