"""``GET /api/health``: version, database and migration status, for people and load balancers."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from inspect_app import __version__
from inspect_app.api.deps import ServicesDep
from inspect_app.db import migration_status

router = APIRouter()
CHECK_TIMEOUT_S = 5


def _check(engine: sa.Engine) -> dict[str, object]:
    database: dict[str, object] = {"ok": False, "backend": engine.dialect.name}
    migrations: dict[str, object] = {"current": None, "head": None, "up_to_date": False}
    try:
        status = migration_status(engine)
        database["ok"] = True
        migrations = {"current": status.current, "head": status.head, "up_to_date": status.up_to_date}
    except sa.exc.SQLAlchemyError as exc:
        database["error"] = str(getattr(exc, "orig", exc) or exc).splitlines()[0]
    return {"database": database, "migrations": migrations}


@router.get("/health")
async def health(services: ServicesDep) -> JSONResponse:
    try:
        checks = await asyncio.wait_for(asyncio.to_thread(_check, services.engine), CHECK_TIMEOUT_S)
    except TimeoutError:
        checks = {"database": {"ok": False, "error": "timed out"}, "migrations": {"up_to_date": False}}
    healthy = bool(checks["database"]["ok"]) and bool(checks["migrations"]["up_to_date"])  # type: ignore[index]
    provider = services.plane.lifecycle.provider
    confinement, problem = provider.confinement()
    sandboxes = {"provider": provider.name, "confinement": confinement, **({"problem": problem} if problem else {})}
    body = {
        "status": "ok" if healthy else "degraded",
        "version": __version__,
        **checks,
        "sandboxes": sandboxes,
        # outside services: one being down degrades its feature, not the app (so not the status code)
        "integrations": services.integrations.report(),
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/health/loop")
async def loop_lag(services: ServicesDep, seconds: float = Query(default=60, gt=0, le=600)) -> dict[str, float]:
    """How late the server's event loop ran in the last ``seconds`` (p50, p99, max): above a few
    milliseconds, something blocks it and every connection of this server waits."""
    return services.loop_lag.report(seconds)
