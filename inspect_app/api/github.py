"""``/api/github/webhook``: GitHub's deliveries, signature-checked, each handled once."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request

from inspect_app.api.deps import PlaneDep, ServicesDep
from inspect_app.control.data import webhooks
from inspect_app.control.event_data import ArtifactData
from inspect_app.errors import InvalidInput
from inspect_app.scm.webhooks import pull_request_change, pushed_branch, verify_signature

router = APIRouter(prefix="/api/github", tags=["github"])
MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


@router.post("/webhook")
async def webhook(request: Request, services: ServicesDep, plane: PlaneDep) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InvalidInput("payload too large")
    verify_signature(
        services.settings.github_webhook_secret.get_secret_value(), body, request.headers.get("x-hub-signature-256", "")
    )
    event = request.headers.get("x-github-event", "")
    delivery = request.headers.get("x-github-delivery", "")
    if not delivery:
        raise InvalidInput("missing X-GitHub-Delivery")
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON: {exc}") from None
    # validate before recording the delivery, so a fixed re-delivery is not mistaken for a replay
    change = pull_request_change(payload) if event == "pull_request" else None
    pushed = pushed_branch(payload) if event == "push" else None
    if not await asyncio.to_thread(webhooks.first_delivery, services.engine, delivery, event):
        return {"status": "duplicate"}
    if change is not None:
        for session_id, data in await asyncio.to_thread(webhooks.apply_pull_request, services.engine, change):
            # every connected client sees it live
            await plane.emit(session_id, "artifact", ArtifactData.model_validate(data))
    if pushed is not None:
        await asyncio.to_thread(webhooks.mark_images_stale, services.engine, *pushed)
    if isinstance(payload, dict):  # automations watching this event (issues labelled, checks failed, ...)
        await services.automations.github_event(event, payload, delivery)
        if services.github_bot is not None:  # an @mention of the App in a pull request
            await services.github_bot.handle(event, payload)
    return {"status": "ok"}
