"""``/api/automations``: automations, their runs, "Run now", and each one's inbound webhook."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from fastapi import APIRouter, Query, Request

from inspect_app.api.deps import CurrentUser, ServicesDep
from inspect_app.api.schemas import AutomationCreate, AutomationId, AutomationUpdate, RepositoryId, ReviewSwitch
from inspect_app.control.automations import manage, presets
from inspect_app.control.data import automations as data
from inspect_app.errors import InvalidInput, NotFound, Unauthorized

router = APIRouter(prefix="/api/automations", tags=["automations"])
MAX_DELIVERY_ID = 100


def _spec(body: AutomationCreate | AutomationUpdate) -> manage.Spec:
    return manage.Spec(**body.model_dump(exclude_unset=True))


@router.get("")
async def list_automations(services: ServicesDep, _user: CurrentUser) -> dict[str, Any]:
    automations = await asyncio.to_thread(data.list_all, services.engine)
    last = await asyncio.to_thread(data.last_runs, services.engine)
    return {"automations": [manage.public(a, last.get(a.id or 0)) for a in automations]}


@router.post("", status_code=201)
async def create(body: AutomationCreate, services: ServicesDep, user: CurrentUser) -> dict[str, Any]:
    automation, secret = await asyncio.to_thread(manage.create, services.engine, services.cipher, user, _spec(body))
    # the webhook's secret is shown once, here (stored encrypted; it signs every delivery)
    return {**manage.public(automation), **({"webhook_secret": secret} if secret else {})}


@router.put("/presets/review/{repository_id}")
async def review_preset(
    repository_id: RepositoryId, body: ReviewSwitch, services: ServicesDep, user: CurrentUser
) -> dict[str, Any]:
    """Pull request reviews for a GitHub repository, on or off (admins; off by default)."""
    automation = await asyncio.to_thread(
        presets.set_review, services.engine, services.cipher, user, repository_id, on=body.on
    )
    return {"review": body.on, "automation": manage.public(automation) if automation is not None else None}


@router.get("/{automation_id}")
async def get(automation_id: AutomationId, services: ServicesDep, _user: CurrentUser) -> dict[str, Any]:
    automation = await asyncio.to_thread(data.get, services.engine, automation_id)
    last = await asyncio.to_thread(data.last_runs, services.engine)
    return manage.public(automation, last.get(automation.id or 0))


@router.patch("/{automation_id}")
async def change(
    automation_id: AutomationId, body: AutomationUpdate, services: ServicesDep, user: CurrentUser
) -> dict[str, Any]:
    automation = await asyncio.to_thread(manage.update, services.engine, user, automation_id, _spec(body))
    return manage.public(automation)


@router.delete("/{automation_id}", status_code=204)
async def delete(automation_id: AutomationId, services: ServicesDep, user: CurrentUser) -> None:
    await asyncio.to_thread(manage.delete, services.engine, user, automation_id)


@router.get("/{automation_id}/runs")
async def runs(
    automation_id: AutomationId, services: ServicesDep, _user: CurrentUser, limit: int = Query(default=50, ge=1, le=200)
) -> dict[str, Any]:
    await asyncio.to_thread(data.get, services.engine, automation_id)
    found = await asyncio.to_thread(data.runs, services.engine, automation_id, limit=limit)
    prs = await asyncio.to_thread(data.pull_requests, services.engine, [r.session_id for r in found if r.session_id])
    return {"runs": [manage.run_public(run, prs.get(run.session_id or "", "")) for run in found]}


@router.post("/{automation_id}/run", status_code=202)
async def run_now(automation_id: AutomationId, services: ServicesDep, user: CurrentUser) -> dict[str, Any]:
    await asyncio.to_thread(manage.editable, services.engine, user, automation_id)
    started = await services.automations.run_now(automation_id)
    return {"runs": [manage.run_public(run) for run in started]}


@router.post("/{automation_id}/webhook", status_code=202)
async def webhook(automation_id: AutomationId, request: Request, services: ServicesDep) -> dict[str, Any]:
    """An inbound delivery: ``X-Inspect-Signature-256: sha256=<HMAC-SHA256 of the body>`` keyed with
    the automation's secret, or ``Authorization: Bearer <secret>``. ``X-Inspect-Delivery`` (optional)
    names the delivery: one seen before starts nothing."""
    try:
        automation = await asyncio.to_thread(data.get, services.engine, automation_id)
    except NotFound:  # the same answer as a bad signature: a sender learns nothing about which ids exist
        raise Unauthorized("sign the body (X-Inspect-Signature-256) with the automation's secret") from None
    body = await request.body()
    signature = request.headers.get("x-inspect-signature-256", "")
    authorization = request.headers.get("authorization", "")
    await asyncio.to_thread(manage.verify_delivery, services.cipher, automation, body, signature, authorization)
    delivery = request.headers.get("x-inspect-delivery", "") or secrets.token_hex(12)
    if len(delivery) > MAX_DELIVERY_ID:
        raise InvalidInput(f"X-Inspect-Delivery is longer than {MAX_DELIVERY_ID} characters")
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidInput("the body must be a JSON object")
    started = await services.automations.webhook(automation, payload, delivery)
    return {"delivery": delivery, "runs": [manage.run_public(run) for run in started]}
