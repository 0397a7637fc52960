"""Request limits at the API's edge: a body-size limit (413) and no NUL byte in the URL (422).

An ASGI middleware on ``/api/`` requests (Reflex's own routes pass untouched). The body limit holds
for a declared ``Content-Length`` (refused before anything is read) and for the bytes actually
received, so a chunked or lying stream is cut off as soon as it passes the limit, not after the
route has read it all into memory. Routes that need more (GitHub's webhook) get their own limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote_to_bytes

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inspect_app.api.errors import error_body

MAX_BODY = 1024 * 1024  # a prompt (64,000 characters) with its context (64 KiB) fits several times over


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when the body passes its limit. An HTTPException so that FastAPI's body
    parsing lets it through to the error handlers (a plain exception would become a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the request body is over the limit of {limit} bytes")


def url_has_nul(scope: Scope) -> bool:
    """Whether the path or the query string (percent-decoded) holds a NUL byte (pure)."""
    query: bytes = scope.get("query_string", b"")
    return "\x00" in str(scope.get("path", "")) or b"\x00" in unquote_to_bytes(query)


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY, per_path: Mapping[str, int] | None = None) -> None:
        self._app = app
        self._max_body = max_body
        self._per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith("/api/"):
            await self._app(scope, receive, send)
            return
        if url_has_nul(scope):
            await _refuse(scope, receive, send, 422, "invalid_input", "NUL characters are not accepted in a URL")
            return
        limit = self._per_path.get(path, self._max_body)
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(scope, receive, send, 413, "too_large", BodyTooLarge(limit).detail)
            return
        received = 0
        responded = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal responded
            responded = responded or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, limited_receive, watched_send)
        except BodyTooLarge as exc:
            if not responded:  # else the route answered before reading it all: nothing left to say
                await _refuse(scope, receive, send, 413, "too_large", exc.detail)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str) -> None:
    # Connection: close, so the client does not send the rest of a body nobody will read
    response = JSONResponse(error_body(code, message), status_code=status, headers={"connection": "close"})
    await response(scope, receive, send)
