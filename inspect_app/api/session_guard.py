"""Who may act through a browser's session cookie: the UI's live socket, cookie-authenticated API
calls, and page loads (a web page the person happens to visit must not drive Inspect).

An ASGI middleware around the whole app (API, Reflex's socket and its pages), like ``FrameGuard``.
The rules (``rule`` is pure; the middleware only looks the session up and answers):

- ``/_event`` (Reflex's state socket, WebSocket and polling) and ``/_upload``: the Origin must be
  allowed and the ``inspect_session`` cookie must name a live web session. Anything else is refused
  before Reflex sees it (403, or a refused WebSocket handshake), so no state event runs.
- ``/api/…`` over HTTP with the cookie and no bearer token (the API acts as the cookie's user): a
  request that changes state (POST/PUT/PATCH/DELETE) needs an allowed Origin; any request with a
  foreign Origin is refused (Reflex's CORS layer would otherwise let another origin read the answer).
  Writes under ``/api/auth/`` (signing in or out) need an allowed Origin even without the cookie.
- ``/media/…`` (screenshots) passes, always: GitHub's image proxy and Slack fetch it without
  signing in, and a person may open an image from a pull request in a tab.
- A page load (GET/HEAD accepting HTML) other than ``/login`` and ``/denied`` without a live
  session goes to ``/login``; in the extension's frame (where /login may not be framed) it gets a
  short page that says to sign in in a tab. Pages are answered ``Cache-Control: no-cache``, so
  every load comes back here.

Allowed origins: the public URL's (for a loopback public URL, the same port on 127.0.0.1,
localhost and [::1] too: the same server), and ``INSPECT_EXTENSION_ORIGINS``. ``Origin: null`` and
a missing Origin are never allowed where an Origin is required.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Literal
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inspect_app import services
from inspect_app.api.framing import FRAMEABLE
from inspect_app.control.data import auth
from inspect_app.errors import Unauthorized
from inspect_app.settings import Settings

log = logging.getLogger(__name__)

SOCKET_PATHS = ("/_event", "/_upload")
PUBLIC_PAGES = ("/login", "/denied")
PUBLIC_PATHS = ("/media",)  # answered to anyone: the unguessable key in the path is the secret
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")  # as written in a URL
DEFAULT_PORTS = {"http": 80, "https": 443}

Rule = Literal["pass", "refuse", "needs_session", "page"]

SIGN_IN_FIRST = (
    b"<!doctype html><meta charset=utf-8><title>Sign in \xc2\xb7 Inspect</title>"
    b"<body style='font:14px system-ui,sans-serif;padding:1rem'>"
    b"<p>Sign in to Inspect first: <a href='/login' target='_blank' rel='noopener'>open the sign-in page</a>"
    b" in a tab, then reopen this panel.</p>"
)


@dataclass(frozen=True)
class Seen:
    """What the rules read from a request."""

    kind: Literal["http", "websocket"]
    method: str
    path: str
    origin: str | None
    session: str  # the inspect_session cookie, or ""
    bearer: bool  # an Authorization: Bearer token (then the API ignores the cookie)
    accepts_html: bool


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` as a browser writes it in ``Origin`` (default port left out)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS.get(scheme)) else f"{scheme}://{host}:{port}"


def allowed_origins(public_url: str, extension_origins: list[str]) -> frozenset[str]:
    public = origin_of(public_url)
    origins = {public, *extension_origins}
    parts = urlsplit(public)
    if parts.hostname in ("127.0.0.1", "localhost", "::1"):
        port = f":{parts.port}" if parts.port else ""
        origins |= {f"{parts.scheme}://{alias}{port}" for alias in LOOPBACK}
    return frozenset(origins)


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def rule(seen: Seen, allowed: frozenset[str]) -> Rule:
    """What a request needs before it may go on (pure)."""
    origin_ok = seen.origin is not None and seen.origin in allowed
    if _under(seen.path, PUBLIC_PATHS):
        return "pass"
    if _under(seen.path, SOCKET_PATHS):
        return "needs_session" if origin_ok else "refuse"
    if seen.path.startswith("/api/"):
        if seen.kind != "http" or seen.bearer:
            return "pass"  # WebSockets under /api authenticate with a token in their first message
        if seen.method in WRITES and seen.path.startswith("/api/auth/") and not origin_ok:
            return "refuse"
        if not seen.session:
            return "pass"
        if seen.method in WRITES and not origin_ok:
            return "refuse"
        return "refuse" if seen.origin is not None and not origin_ok else "pass"
    if seen.kind == "http" and seen.method in ("GET", "HEAD") and seen.accepts_html:
        return "pass" if _under(seen.path, PUBLIC_PAGES) else "page"
    return "pass"


def seen_from(scope: Scope) -> Seen:
    headers: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[name] = f"{headers[name]}; {text}" if name == "cookie" and name in headers else text
    cookies: SimpleCookie = SimpleCookie()
    with contextlib.suppress(CookieError):  # a malformed cookie header: treated as no session
        cookies.load(headers.get("cookie", ""))
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return Seen(
        kind="websocket" if scope["type"] == "websocket" else "http",
        method=str(scope.get("method", "GET")).upper(),
        path=str(scope.get("path", "")),
        origin=headers.get("origin"),
        session=cookies[auth.SESSION_COOKIE].value if auth.SESSION_COOKIE in cookies else "",
        bearer=scheme.lower() == "bearer" and bool(token.strip()),
        accepts_html="text/html" in headers.get("accept", ""),
    )


class SessionGuard:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._allowed: frozenset[str] | None = None

    def _settings(self) -> Settings:
        return services.current().settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        if self._allowed is None:  # read on the first request: importing reads no configuration
            settings = self._settings()
            self._allowed = allowed_origins(settings.resolved_public_url, settings.extension_origin_list)
        seen = seen_from(scope)
        verdict = rule(seen, self._allowed)
        page = verdict == "page"
        if verdict in ("needs_session", "page") and await self._live(seen.session):
            verdict = "pass"
        if verdict == "pass":
            await self._app(scope, receive, _revalidated(send) if page else send)
        elif verdict == "page":
            await self._sign_in_first(seen, send)
        else:
            # what was refused and why, never the cookie itself
            log.warning(
                "refused %s %s %s: origin %r, %s",
                seen.kind,
                seen.method,
                seen.path,
                seen.origin,
                "a session cookie" if seen.session else "no session cookie",
            )
            await _refuse(scope, receive, send)

    async def _live(self, session: str) -> bool:
        if not session:
            return False
        try:
            await asyncio.to_thread(auth.user_for_session, services.current().engine, session)
        except Unauthorized:
            return False
        return True

    async def _sign_in_first(self, seen: Seen, send: Send) -> None:
        if _under(seen.path, (FRAMEABLE,)):
            await _answer(send, 401, SIGN_IN_FIRST, b"text/html; charset=utf-8")
        else:
            await _answer(send, 303, b"", b"text/plain", location=b"/login")


def _revalidated(send: Send) -> Send:
    """A page is asked for again on every load (``no-cache``): served from the browser's cache, it
    would skip the sign-in check (after signing out, say) and load only to find its socket refused."""

    async def send_uncached(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
            message = {**message, "headers": [*headers, (b"cache-control", b"no-cache")]}
        await send(message)

    return send_uncached


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect; closing before accepting refuses the handshake (HTTP 403)
        await send({"type": "websocket.close", "code": 1008})
        return
    body = {"error": {"code": "forbidden", "message": "refused: sign in, from this instance's own pages"}}
    await _answer(send, 403, json.dumps(body).encode(), b"application/json")


async def _answer(send: Send, status: int, body: bytes, content_type: bytes, location: bytes = b"") -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if location:
        headers.append((b"location", location))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
