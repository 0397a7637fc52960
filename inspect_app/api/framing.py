"""Who may frame Inspect's pages: the Chrome extension's side panel may frame ``/extension``;
nothing may frame anything else (no clickjacking).

An ASGI middleware around the whole app (API and Reflex's pages): it sets
``Content-Security-Policy: frame-ancestors …`` on every HTTP response. The allowed origins come
from ``INSPECT_EXTENSION_ORIGINS``, read on the first request (importing reads no configuration).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inspect_app import services

FRAMEABLE = "/extension"


def frame_ancestors(path: str, origins: list[str]) -> str:
    """The CSP for a response to ``path`` (pure)."""
    if (path == FRAMEABLE or path.startswith(FRAMEABLE + "/")) and origins:
        return "frame-ancestors " + " ".join(origins)
    return "frame-ancestors 'none'"


class FrameGuard:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._origins: list[str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if self._origins is None:
            self._origins = services.current().settings.extension_origin_list
        policy = frame_ancestors(str(scope.get("path", "")), self._origins).encode()

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"]
                message = {**message, "headers": [*headers, (b"content-security-policy", policy)]}
            await send(message)

        await self._app(scope, receive, send_with_policy)
