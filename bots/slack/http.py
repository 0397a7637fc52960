"""``/api/slack/events``: Slack's Events API and interactivity (the picker), over HTTP.

Every request's signature and timestamp are checked (``INSPECT_SLACK_SIGNING_SECRET``; older than
five minutes is refused); ``url_verification`` is answered; everything else is acknowledged at
once and handled in the background, within Slack's 3 s.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from slack_sdk.signature import SignatureVerifier

from inspect_app.api.deps import CurrentUser, ServicesDep
from inspect_app.api.schemas import RowId
from inspect_app.control.data import slack
from inspect_app.errors import InvalidInput, NotFound, Unauthorized

router = APIRouter(tags=["slack"])


class ChannelRepository(BaseModel):
    model_config = ConfigDict(extra="forbid")
    repository_id: RowId


@router.put("/api/slack/channels/{channel}", status_code=204)
async def associate_channel(
    channel: str, body: ChannelRepository, services: ServicesDep, user: CurrentUser
) -> Response:
    """Requests in this channel go to this repository (unless they name another one)."""
    if not channel.isalnum() or len(channel) > 32:
        raise InvalidInput("a Slack channel id looks like C0123ABCD", code="bad_channel")
    await asyncio.to_thread(
        slack.associate_channel, services.engine, channel, body.repository_id, actor_id=user.id or 0
    )
    return Response(status_code=204)


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
