"""The HTTP API: a FastAPI app that Reflex mounts in front of its own routes (``api_transformer``)."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from bots.slack import http as slack_http
from inspect_app import __version__, services
from inspect_app.api import (
    auth,
    automations,
    costs,
    extensions,
    github,
    health,
    me,
    media,
    metrics,
    previews,
    repositories,
    sandbox_tools,
    sandbox_ws,
    sessions,
    terminal,
    ws,
)
from inspect_app.api.errors import install_error_handlers
from inspect_app.api.limits import RequestLimits
from inspect_app.control.media import MAX_MEDIA_BYTES


class LazySessionMiddleware:
    """Starlette's signed-cookie sessions (Authlib keeps the OAuth state there), keyed from the
    instance's secret key on first use, so that importing the app reads no configuration."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._inner: SessionMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/api/auth/"):
            await self._app(scope, receive, send)
            return
        if self._inner is None:
            key = services.current().settings.encryption_key()
            secret = hmac.new(key, b"inspect-oauth-session", hashlib.sha256).hexdigest()
            self._inner = SessionMiddleware(self._app, secret_key=secret, same_site="lax", max_age=600)
        await self._inner(scope, receive, send)


def build_api() -> FastAPI:
    api = FastAPI(
        title="Inspect API",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    install_error_handlers(api)
    api.add_middleware(LazySessionMiddleware)
    larger = {"/api/github/webhook": github.MAX_BODY, "/api/sandbox/screenshots": MAX_MEDIA_BYTES}
    api.add_middleware(RequestLimits, per_path=larger)  # outermost
    api.include_router(auth.router)
    api.include_router(auth.pages)
    api.include_router(health.router, prefix="/api", tags=["health"])
    api.include_router(metrics.router)
    api.include_router(me.router, prefix="/api", tags=["users"])
    api.include_router(repositories.router)
    api.include_router(sessions.router)
    api.include_router(automations.router)
    api.include_router(costs.router)
    api.include_router(extensions.router)
    api.include_router(media.router)
    api.include_router(ws.router)
    api.include_router(terminal.router)
    api.include_router(previews.router)
    api.include_router(terminal.pages)
    api.include_router(sandbox_ws.router)
    api.include_router(sandbox_tools.router)
    api.include_router(github.router)
    api.include_router(slack_http.router)
    return api
