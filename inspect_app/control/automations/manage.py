"""Creating, changing and reading automations: the checks every client goes through (the API now,
the Automations page later), and the inbound webhook's authentication.

Anyone signed in may create an automation acting for themselves; only an admin may make one act
for someone else (its sessions and pull requests are that person's). Only its creator, the person
it acts for, or an admin may change, run or delete it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from inspect_app.control.automations import github_events, schedule, templates
from inspect_app.control.automations.filters import MAX_FILTERS, Filter
from inspect_app.control.crypto import Cipher
from inspect_app.control.data import automations as data
from inspect_app.control.data import repositories, roles
from inspect_app.db import session_scope
from inspect_app.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from inspect_app.models import Automation, AutomationRun, AutomationStatus, User, utcnow
from inspect_app.scm.webhooks import verify_signature

TRIGGERS = ("schedule", "webhook", "github", "slack")
# the fields one kind of trigger has (given for another, they are refused rather than ignored)
FIELD_TRIGGER = {
    "cron": "schedule",
    "timezone": "schedule",
    "filters": "webhook",
    "events": "github",
    "label": "github",
    "review": "github",
    "channel": "slack",
    "contains": "slack",
}
MAX_REPOSITORIES = 20
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, as tokens have (tokens.py)


@dataclass
class Spec:
    """What a person sets (every field, for a new one; those given, for a change)."""

    name: str | None = None
    trigger: str | None = None
    cron: str | None = None
    timezone: str | None = None
    filters: list[dict[str, Any]] | None = None
    repository_ids: list[int] | None = None
    template: str | None = None
    model: str | None = None
    acts_for_id: int | None = None
    max_concurrent: int | None = None
    overflow: str | None = None
    status: str | None = None
    events: list[str] | None = None  # github
    label: str | None = None  # github, issues.labeled
    channel: str | None = None  # slack
    contains: str | None = None  # slack
    review: bool | None = None  # github: post the answer as a review of the pull request


def create(engine: sa.Engine, cipher: Cipher, actor: User, spec: Spec) -> tuple[Automation, str | None]:
    """A new automation, and (for a webhook trigger) its secret, shown this once."""
    if spec.trigger not in TRIGGERS:
        raise InvalidInput(f"trigger must be one of {', '.join(TRIGGERS)}")
    fields = _checked(engine, actor, spec, trigger=spec.trigger)
    fields.setdefault("acts_for_id", actor.id)
    secret = None
    if spec.trigger == "webhook":
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        fields["webhook_secret_ciphertext"] = cipher.encrypt(secret, associated="automation-webhook")
    automation = data.create(engine, trigger=spec.trigger, created_by_id=actor.id, **fields)
    return automation, secret


def update(engine: sa.Engine, actor: User, automation_id: int, spec: Spec) -> Automation:
    automation = editable(engine, actor, automation_id)
    if spec.trigger is not None and spec.trigger != automation.trigger:
        raise InvalidInput("the trigger of an automation cannot change (create another one)")
    fields = _checked(engine, actor, spec, trigger=automation.trigger, current=automation)
    if spec.status == AutomationStatus.ACTIVE and automation.status != AutomationStatus.ACTIVE:
        fields |= {"failures_in_a_row": 0, "paused_reason": ""}  # resumed by a person: a fresh count
        if automation.trigger == "schedule" and "next_fire_at" not in fields:  # from now on, not the backlog
            config = automation.trigger_config
            fields["next_fire_at"] = schedule.next_fire(config["cron"], config["timezone"], utcnow())
    elif spec.status == AutomationStatus.PAUSED and automation.status != AutomationStatus.PAUSED:
        fields["paused_reason"] = f"paused by {actor.name}"
    return data.update(engine, automation_id, **fields)


def delete(engine: sa.Engine, actor: User, automation_id: int) -> None:
    editable(engine, actor, automation_id)
    data.delete(engine, automation_id)


def editable(engine: sa.Engine, actor: User, automation_id: int) -> Automation:
    """The automation, if ``actor`` may change or run it."""
    automation = data.get(engine, automation_id)
    if actor.id not in (automation.created_by_id, automation.acts_for_id) and not actor.is_admin:
        raise Forbidden("only its creator, the person it acts for or an admin can change this automation")
    return automation


def _checked(
    engine: sa.Engine, actor: User, spec: Spec, *, trigger: str, current: Automation | None = None
) -> dict[str, Any]:
    """The columns ``spec`` sets, each checked (InvalidInput / Forbidden / NotFound say what is wrong)."""
    fields: dict[str, Any] = {}
    new = current is None
    for name in ("name", "template", "repository_ids"):
        if new and getattr(spec, name) is None:
            raise InvalidInput(f"{name} is required")
    for field_name, owner in FIELD_TRIGGER.items():
        if getattr(spec, field_name) is not None and trigger != owner:
            raise InvalidInput(f"{field_name} belongs to a {owner} trigger, and this one is {trigger}")
    if spec.name is not None:
        if not spec.name.strip():
            raise InvalidInput("name is empty")
        fields["name"] = spec.name.strip()
    if spec.template is not None:
        templates.check(spec.template)
        fields["template"] = spec.template
    if spec.repository_ids is not None:
        if not 1 <= len(spec.repository_ids) <= MAX_REPOSITORIES:
            raise InvalidInput(f"repository_ids: between 1 and {MAX_REPOSITORIES} repositories")
        for repository_id in spec.repository_ids:
            repositories.get(engine, repository_id)  # NotFound names it
        fields["repository_ids"] = list(dict.fromkeys(spec.repository_ids))
    if spec.model is not None:
        fields["model"] = spec.model
    if spec.acts_for_id is not None and spec.acts_for_id != actor.id:
        roles.require_admin(engine, actor.id or 0, "make an automation act for someone else")
        if not _exists(engine, spec.acts_for_id):
            raise NotFound(f"no user {spec.acts_for_id}")
        fields["acts_for_id"] = spec.acts_for_id
    if spec.max_concurrent is not None:
        fields["max_concurrent"] = spec.max_concurrent
    if spec.overflow is not None:
        fields["overflow"] = spec.overflow
    if spec.status is not None:
        fields["status"] = spec.status
    config = dict(current.trigger_config) if current is not None else {}
    if trigger == "schedule":
        cron = spec.cron if spec.cron is not None else config.get("cron")
        zone = spec.timezone if spec.timezone is not None else config.get("timezone", "UTC")
        if cron is None:
            raise InvalidInput("a schedule needs cron (e.g. '0 9 * * 1-5')")
        if new or spec.cron is not None or spec.timezone is not None:
            fields["trigger_config"] = {"cron": cron, "timezone": zone}
            fields["next_fire_at"] = schedule.next_fire(cron, zone, utcnow())  # also checks both
            if fields["next_fire_at"] is None:
                raise InvalidInput(f"the schedule {cron!r} never fires")
    elif trigger in ("github", "slack"):
        watching = (spec.events, spec.label, spec.channel, spec.contains, spec.review)
        if new or any(value is not None for value in watching):
            fields["trigger_config"] = _watching(trigger, spec, config)
    elif spec.filters is not None or new:
        filters = spec.filters or []
        if len(filters) > MAX_FILTERS:
            raise InvalidInput(f"at most {MAX_FILTERS} filters")
        try:
            checked = [Filter.model_validate(f).model_dump(by_alias=True, exclude_none=True) for f in filters]
        except ValueError as exc:
            raise InvalidInput(f"filters: {exc}") from None
        fields["trigger_config"] = {"filters": checked}
    return fields


def _watching(trigger: str, spec: Spec, config: dict[str, Any]) -> dict[str, Any]:
    """A GitHub trigger's events (and label), or a Slack trigger's channel and phrase."""
    if trigger == "github":
        events = spec.events if spec.events is not None else config.get("events", [])
        unknown = [e for e in events if e not in github_events.EVENTS]
        if not events or unknown:
            raise InvalidInput(f"events: one or more of {', '.join(github_events.EVENTS)}")
        label = spec.label if spec.label is not None else config.get("label", "")
        review = spec.review if spec.review is not None else bool(config.get("review", False))
        return {"events": list(dict.fromkeys(events)), "label": label, "review": review}
    channel = spec.channel if spec.channel is not None else config.get("channel", "")
    contains = spec.contains if spec.contains is not None else config.get("contains", "")
    if not channel:
        raise InvalidInput("a Slack trigger needs the channel's id (e.g. C0123456789)")
    return {"channel": channel, "contains": contains}


def _exists(engine: sa.Engine, user_id: int) -> bool:
    with session_scope(engine) as db:
        return db.get(User, user_id) is not None


# --- the inbound webhook ---------------------------------------------------------------------
def verify_delivery(cipher: Cipher, automation: Automation, body: bytes, signature: str, authorization: str) -> None:
    """Raise Unauthorized unless the delivery carries ``sha256=<HMAC of the body>`` keyed with the
    automation's secret, or the secret itself as a bearer token."""
    if automation.trigger != "webhook" or automation.webhook_secret_ciphertext is None:
        raise Unauthorized("this automation has no webhook")
    secret = cipher.decrypt(automation.webhook_secret_ciphertext, associated="automation-webhook")
    if signature:
        verify_signature(secret, body, signature)  # GitHub's scheme: sha256=<HMAC of the body>
        return
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), secret.encode()):
        return
    raise Unauthorized("sign the body (X-Inspect-Signature-256: sha256=<HMAC>) or send the secret as a bearer token")


# --- what the API shows ----------------------------------------------------------------------
def public(automation: Automation, last_run: AutomationRun | None = None) -> dict[str, Any]:
    return {
        "id": automation.id,
        "name": automation.name,
        "trigger": automation.trigger,
        **automation.trigger_config,
        "repository_ids": automation.repository_ids,
        "template": automation.template,
        "model": automation.model,
        "acts_for_id": automation.acts_for_id,
        "created_by_id": automation.created_by_id,
        "status": automation.status,
        "paused_reason": automation.paused_reason,
        "failures_in_a_row": automation.failures_in_a_row,
        "max_concurrent": automation.max_concurrent,
        "overflow": automation.overflow,
        "next_fire_at": automation.next_fire_at.isoformat() if automation.next_fire_at else None,
        "webhook_url": f"/api/automations/{automation.id}/webhook" if automation.trigger == "webhook" else None,
        "last_run": run_public(last_run) if last_run is not None else None,
    }


def run_public(run: AutomationRun, pr_url: str = "") -> dict[str, Any]:
    ended = run.finished_at
    return {
        "pr_url": pr_url or None,  # the pull request (or pushed branch) its session produced
        "id": run.id,
        "number": run.number,
        "automation_id": run.automation_id,
        "repository_id": run.repository_id,
        "source": run.source,
        "status": run.status,
        "reason": run.reason,
        "prompt": run.prompt,
        "session_id": run.session_id,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": ended.isoformat() if ended else None,
        "duration_s": round((ended - run.started_at).total_seconds(), 3) if ended and run.started_at else None,
    }
