"""The preview origin: a listener of its own that relays browsers to ports inside sandboxes.

Every connection starts with one HTTP request head, read here (bounded) for three things only: its
host (``<session>-<port>.<preview domain>``: which preview), its visit pass (this origin's cookie;
``control/previews.py`` says how one is obtained), and whether it upgrades (WebSocket). Then the
head goes on to the sandbox with two changes — the pass taken out of its cookies, and
``Connection: close`` unless it upgrades, so that every request on a connection is one that was
checked — and from there bytes flow both ways as they are: no path or body is rewritten.

What this listener answers itself (no pass, an undeclared port, a sandbox still starting, a port
with nothing listening) is a short page with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

from inspect_app import services as services_module
from inspect_app.control.previews import VISIT_S, Passes, Tunnel, parse_host
from inspect_app.errors import InspectError
from sandbox.protocol import TunnelClose

log = logging.getLogger(__name__)

COOKIE = "inspect_preview"
PASS_COOKIES = (COOKIE, f"__Host-{COOKIE}")  # over http, and over https
ENTER_PATH = "/__inspect/enter"
MAX_HEAD = 32 * 1024
HEAD_TIMEOUT_S = 30.0
READ_CHUNK = 64 * 1024
STARTING_REFRESH_S = 2
HALF_CLOSED_S = 60.0  # how long an answer may still take once the browser stopped sending
DRAIN_S = 30.0  # a browser that takes none of a stream's bytes this long is gone
MAX_CONNECTIONS = 256  # at once, over all previews (each holds a file descriptor of the app's)


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    rest: bytes  # what came after the head (the start of a body)

    def header(self, name: str) -> str:
        return next((value for key, value in self.headers if key.lower() == name), "")

    @property
    def upgrade(self) -> bool:
        return "upgrade" in self.header("connection").lower() and bool(self.header("upgrade"))


class BadRequest(Exception):
    pass


def parse_head(raw: bytes) -> Request:
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("not an HTTP/1 request")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or line[0] in " \t":  # no folding, no odd names
            raise BadRequest("a malformed header")
        headers.append((name, value.strip()))
    return Request(parts[0], parts[1], parts[2], headers, rest)


def forwarded_head(request: Request) -> bytes:
    """The head as the sandbox's server gets it: without this origin's pass; one request per
    connection unless it upgrades."""
    lines = [f"{request.method} {request.target} {request.version}"]
    for name, value in request.headers:
        lower = name.lower()
        if lower == "cookie":
            kept = [c for c in value.split(";") if c.strip() and c.strip().partition("=")[0] not in PASS_COOKIES]
            if kept:
                lines.append(f"{name}: {';'.join(kept).strip()}")
        elif lower in ("connection", "keep-alive") and not request.upgrade:
            continue
        else:
            lines.append(f"{name}: {value}")
    if not request.upgrade:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def page(status: str, title: str, text: str, *, extra: tuple[str, ...] = ()) -> bytes:
    body = (
        "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{html.escape(title)} · Inspect preview</title>"
        "<body style='font:15px system-ui,sans-serif;padding:2rem;max-width:40rem'>"
        f"<h1 style='font-size:1.2rem'>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
    ).encode()
    head = [
        f"HTTP/1.1 {status}",
        "Content-Type: text/html; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
        "Connection: close",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def visit_cookie(request: Request) -> str:
    try:
        jar = SimpleCookie(request.header("cookie"))
    except CookieError:
        return ""
    morsel = jar.get(f"__Host-{COOKIE}") or jar.get(COOKIE)
    return morsel.value if morsel is not None else ""


class PreviewServer:
    def __init__(self, passes: Passes, *, https: bool = False) -> None:
        self._passes = passes
        self._https = https  # people reach previews over https (INSPECT_PREVIEW_PUBLIC_URL)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD)
        except OSError as exc:  # previews are one feature: the app runs without them
            log.error("previews are off: cannot listen on %s:%s (%s)", host, port, exc)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= MAX_CONNECTIONS:
            writer.close()
            return
        self._connections.add(writer)
        try:
            answer = await self._handle(reader, writer)
            if answer:
                writer.write(answer)
                await asyncio.wait_for(writer.drain(), HEAD_TIMEOUT_S)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception:  # a preview's connection must never take the listener down
            log.exception("preview connection failed")
        finally:
            self._connections.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes | None:
        """Relay the connection, or the page to answer instead."""
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        try:
            request = parse_head(raw)
        except BadRequest as exc:
            return page("400 Bad Request", "Bad request", str(exc))
        target = parse_host(request.header("host"))
        if target is None:
            return page("404 Not Found", "No such preview", "This address names no session's preview.")
        session_id, port = target
        if urlsplit(request.target).path == ENTER_PATH:
            return self._enter(request, session_id, port)
        if self._passes.check(visit_cookie(request), "visit", session_id, port) is None:
            return page(
                "401 Unauthorized",
                "Open this preview from Inspect",
                "Previews are for people signed in to Inspect: open it from its session's page.",
            )
        plane = services_module.current().plane
        link = plane.links.ready(session_id)
        if link is None:
            plane.warm(session_id)
            return page(
                "503 Service Unavailable",
                "Starting the sandbox…",
                "This session's sandbox is starting; the page reloads by itself.",
                extra=(f"Refresh: {STARTING_REFRESH_S}", "Retry-After: 2"),
            )
        if port not in link.previews:
            return page(
                "404 Not Found",
                "Not a preview port",
                f"Port {port} is not declared in this workspace's .inspect/preview.",
            )
        try:
            tunnel = await plane.tunnels.open(session_id, port)
        except InspectError as exc:
            return page("503 Service Unavailable", "The sandbox is not reachable", exc.message)
        try:
            return await self._relay(tunnel, request, reader, writer)
        finally:
            await plane.tunnels.close(tunnel)

    def _enter(self, request: Request, session_id: str, port: int) -> bytes:
        """Trade an entry pass (from the app's redirect) for this origin's own cookie."""
        given = parse_qs(urlsplit(request.target).query).get("pass", [""])[0]
        entry = self._passes.check(given, "entry", session_id, port)
        if entry is None:
            return page("401 Unauthorized", "This link has expired", "Open the preview again from its session's page.")
        visit = self._passes.issue("visit", session_id, port, entry.user_id)
        cookie = f"{COOKIE}={visit}; Path=/; Max-Age={VISIT_S}; HttpOnly; SameSite=Lax"
        if self._https:  # behind TLS: never sent in clear, and bound to exactly this host
            cookie = f"__Host-{cookie}; Secure"
        return page("303 See Other", "Opening the preview", "", extra=("Location: /", f"Set-Cookie: {cookie}"))

    async def _relay(
        self, tunnel: Tunnel, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes | None:
        tunnels = services_module.current().plane.tunnels
        if not await tunnels.write(tunnel, forwarded_head(request) + request.rest):
            return page("503 Service Unavailable", "The sandbox is not reachable", "Try again in a moment.")

        async def upstream() -> None:  # the browser's bytes, to the port
            while data := await reader.read(READ_CHUNK):
                if not await tunnels.write(tunnel, data):
                    return

        sending = asyncio.create_task(upstream())
        answered = False
        try:
            while True:
                if sending.done():  # the browser sent all it will: its answer may still come
                    item = await asyncio.wait_for(tunnels.receive(tunnel), HALF_CLOSED_S)
                else:
                    getting = asyncio.ensure_future(tunnels.receive(tunnel))
                    await asyncio.wait({getting, sending}, return_when=asyncio.FIRST_COMPLETED)
                    if not getting.done():
                        getting.cancel()
                        continue
                    item = getting.result()
                if isinstance(item, TunnelClose):
                    if not answered and item.reason:
                        return page("502 Bad Gateway", "The preview is not answering", item.reason)
                    return None
                answered = True
                writer.write(item)
                await asyncio.wait_for(writer.drain(), DRAIN_S)
        finally:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sending
