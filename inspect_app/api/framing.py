"""Who may frame Inspect's pages: the Chrome extension's side panel may frame ``/extension``;
nothing may frame anything else (no clickjacking).

An ASGI middleware around the whole app (API and Reflex's pages): it sets
``Content-Security-Policy: frame-ancestors …`` on every HTTP response, keeping the other directives
of a policy the route set itself (``/media`` sandboxes its images) but never its frame-ancestors.
The allowed origins come from ``INSPECT_EXTENSION_ORIGINS``, read on the first request (importing
reads no configuration).
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


def with_frame_ancestors(policy: str, frame: str) -> str:
    """A route's own ``policy`` with ``frame`` in place of any frame-ancestors it names (pure)."""
    kept = [
        directive.strip()
        for directive in policy.split(";")
        if directive.strip() and directive.split()[0].lower() != "frame-ancestors"
    ]
    return "; ".join([*kept, frame])


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
        frame = frame_ancestors(str(scope.get("path", "")), self._origins)

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = []
                own: list[str] = []  # a browser enforces each policy header: each gets our frame-ancestors
                for key, value in message.get("headers", []):
                    if key.lower() == b"content-security-policy":
                        own.append(value.decode("latin-1"))
                    else:
                        headers.append((key, value))
                policies = [with_frame_ancestors(policy, frame) for policy in own or [""]]
                csp = [(b"content-security-policy", policy.encode("latin-1")) for policy in policies]
                message = {**message, "headers": [*headers, *csp]}
            await send(message)

        await self._app(scope, receive, send_with_policy)
