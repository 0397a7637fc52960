"""The HTTP API: a FastAPI app that Reflex mounts in front of its own routes (``api_transformer``)."""

from __future__ import annotations

from fastapi import FastAPI

from inspect_app import __version__
from inspect_app.api import health, me, repositories, sandbox_ws, sessions, ws
from inspect_app.api.errors import install_error_handlers


def build_api() -> FastAPI:
    api = FastAPI(
        title="Inspect API",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    install_error_handlers(api)
    api.include_router(health.router, prefix="/api", tags=["health"])
    api.include_router(me.router, prefix="/api", tags=["users"])
    api.include_router(repositories.router)
    api.include_router(sessions.router)
    api.include_router(ws.router)
    api.include_router(sandbox_ws.router)
    return api
