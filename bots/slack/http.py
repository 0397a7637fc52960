"""``/api/slack/events``: Slack's Events API and interactivity (the picker), over HTTP.

Every request's signature and timestamp are checked (``INSPECT_SLACK_SIGNING_SECRET``; older than
five minutes is refused); ``url_verification`` is answered; everything else is acknowledged at
once and handled in the background, within Slack's 3 s.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier

from inspect_app.api.deps import ServicesDep
from inspect_app.errors import NotFound, Unauthorized

router = APIRouter(tags=["slack"])


@router.post("/api/slack/events", response_model=None)
async def slack_events(request: Request, services: ServicesDep) -> Response:
    bot, secret = services.slack, services.settings.slack_signing_secret.get_secret_value()
    if bot is None or not secret:
        raise NotFound("Slack is not configured here (INSPECT_SLACK_BOT_TOKEN, INSPECT_SLACK_SIGNING_SECRET)")
    body = await request.body()
    if not SignatureVerifier(secret).is_valid_request(body, dict(request.headers)):
        raise Unauthorized("bad or stale Slack signature")
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        payload = json.loads(parse_qs(body.decode()).get("payload", ["{}"])[0])
        bot.spawn(bot.handle_action(payload))
        return Response(status_code=200)
    envelope = json.loads(body or b"{}")
    if envelope.get("type") == "url_verification":
        return JSONResponse({"challenge": envelope.get("challenge", "")})
    if envelope.get("type") == "event_callback":
        bot.spawn(bot.handle_event(envelope))
    return Response(status_code=200)
