"""``GET /metrics``: this replica's figures in Prometheus's text format, for a scraper holding
``INSPECT_METRICS_TOKEN`` (scrape each replica directly, not through the balancer)."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from inspect_app.api.deps import ServicesDep
from inspect_app.metrics import CONTENT_TYPE

router = APIRouter()
RENDER_TIMEOUT_S = 10


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    expected = services.settings.metrics_token.get_secret_value()
    if not expected:
        return JSONResponse({"detail": "metrics are off: set INSPECT_METRICS_TOKEN"}, status_code=404)
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return JSONResponse(
            {"detail": "a valid metrics token is required (Authorization: Bearer <INSPECT_METRICS_TOKEN>)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    services.metrics.loop_lag(services.loop_lag.report(60))
    # off the loop: the database gauges are read as it renders
    body = await asyncio.wait_for(asyncio.to_thread(services.metrics.render), RENDER_TIMEOUT_S)
    return Response(body, media_type=CONTENT_TYPE)
