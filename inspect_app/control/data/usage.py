"""What prompts used, summed once each from their stored ``step_finish`` events, and what it costs.

``record`` writes one ``PromptUsage`` row per ended prompt (its primary key is the prompt: written
once, whichever replica gets there; re-running it changes nothing), so the events stay the one
source and every total — a prompt, a session, a person's month, a repository, an automation — is
a sum over rows. ``backfill`` does the same for prompts that ended before this table existed.
Prices are applied when read (``control/costs.py``), from the defaults and an admin's overrides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, select

from inspect_app.control import costs
from inspect_app.control.data import instance, roles
from inspect_app.db import session_scope
from inspect_app.errors import Forbidden, InvalidInput
from inspect_app.models import (
    Artifact,
    Automation,
    Event,
    Message,
    MessageStatus,
    PromptUsage,
    Repository,
    Session,
    User,
    utcnow,
)

ENDED = (MessageStatus.COMPLETED, MessageStatus.FAILED, MessageStatus.CANCELLED)
PRICES = "model_prices"  # the instance setting holding an admin's overrides (JSON)
BACKFILL_BATCH = 200


def record(engine: sa.Engine, session_id: str, default_model: str) -> int:
    """Sum the session's ended prompts that have no usage row yet; how many rows were written."""
    with session_scope(engine) as db:
        session = db.get(Session, session_id)
        if session is None:
            return 0
        done = select(PromptUsage.message_id).where(PromptUsage.session_id == session_id)
        ended = db.exec(
            select(Message).where(
                Message.session_id == session_id,
                col(Message.status).in_(ENDED),
                col(Message.id).not_in(done),
            )
        ).all()
        if not ended:
            return 0
        steps: dict[str, list[dict[str, Any]]] = {}
        for message_id, data in db.exec(
            select(Event.message_id, Event.data).where(
                Event.session_id == session_id,
                Event.type == "step_finish",
                col(Event.message_id).in_([m.id for m in ended]),
            )
        ).all():
            steps.setdefault(message_id or "", []).append(dict(data or {}))
        automation = (session.source_ref or {}).get("automation_id") if session.source == "automation" else None
        for message in ended:
            found = steps.get(message.id, [])
            tokens = sum((costs.tokens_of(s.get("tokens") or {}) for s in found), costs.Tokens())
            db.add(
                PromptUsage(
                    message_id=message.id,
                    session_id=session_id,
                    user_id=message.author_id,
                    repository_id=session.repository_id,
                    automation_id=automation if isinstance(automation, int) else None,
                    model=session.model or default_model,
                    steps=len(found),
                    input=tokens.input,
                    output=tokens.output,
                    cache_read=tokens.cache_read,
                    cache_write=tokens.cache_write,
                    at=message.created_at,
                )
            )
        return len(ended)


def backfill(engine: sa.Engine, default_model: str) -> int:
    """Usage rows for sessions whose ended prompts have none (prompts from before this table)."""
    with session_scope(engine) as db:
        missing = db.exec(
            select(Message.session_id)
            .where(
                col(Message.status).in_(ENDED),
                col(Message.id).not_in(select(PromptUsage.message_id)),
            )
            .distinct()
            .limit(BACKFILL_BATCH)
        ).all()
    return sum(record(engine, session_id, default_model) for session_id in missing)


# --- prices -----------------------------------------------------------------------------------------
def prices(engine: sa.Engine) -> dict[str, costs.Price]:
    stored = instance.get(engine, PRICES)
    return costs.price_table(json.loads(stored) if stored else {})


def set_prices(engine: sa.Engine, table: Mapping[str, Mapping[str, float]], *, actor_id: int) -> dict[str, costs.Price]:
    """An admin's prices, USD per million tokens per model (replacing their earlier overrides)."""
    roles.require_admin(engine, actor_id, "change model prices")
    cleaned: dict[str, dict[str, float]] = {}
    for model, values in table.items():
        if not instance.valid_model(model):
            raise InvalidInput(f"{model!r} is not a model; write provider/model", code="bad_prices")
        unknown = set(values) - set(costs.KINDS)
        if unknown:
            raise InvalidInput(f"{model}: unknown price {sorted(unknown)[0]!r} (use {', '.join(costs.KINDS)})")
        if any(not isinstance(v, int | float) or v < 0 or v > 10_000 for v in values.values()):
            raise InvalidInput(f"{model}: a price is a number of dollars per million tokens, 0 to 10000")
        cleaned[model] = {k: float(v) for k, v in values.items()}
    instance.put(engine, PRICES, json.dumps(cleaned))
    return prices(engine)


# --- totals -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spent:
    dollars: Decimal
    tokens: costs.Tokens
    unpriced: bool  # some tokens were of a model with no price


def _spent(db: Any, where: list[Any], table: Mapping[str, costs.Price]) -> Spent:
    rows = db.exec(
        select(  # type: ignore[call-overload]  # 5 columns: past SQLModel's typed overloads
            PromptUsage.model,
            func.sum(PromptUsage.input),
            func.sum(PromptUsage.output),
            func.sum(PromptUsage.cache_read),
            func.sum(PromptUsage.cache_write),
        )
        .where(*where)
        .group_by(PromptUsage.model)
    ).all()
    by_model = [(model, costs.Tokens(*(int(n or 0) for n in sums))) for model, *sums in rows]
    dollars, unpriced = costs.total(by_model, table)
    return Spent(dollars, sum((t for _, t in by_model), costs.Tokens()), unpriced)


def of_session(engine: sa.Engine, session_id: str) -> Spent:
    table = prices(engine)
    with session_scope(engine) as db:
        return _spent(db, [PromptUsage.session_id == session_id], table)


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def this_month(engine: sa.Engine, user_id: int) -> Spent:
    table = prices(engine)
    with session_scope(engine) as db:
        return _spent(db, [PromptUsage.user_id == user_id, PromptUsage.at >= month_start(utcnow())], table)


# --- budgets ----------------------------------------------------------------------------------------
def set_budget(engine: sa.Engine, user_id: int, dollars: float | None, *, actor_id: int) -> User:
    """A person's monthly budget (None: no limit). Admins only."""
    roles.require_admin(engine, actor_id, "set budgets")
    if dollars is not None and not 0 <= dollars <= 1_000_000:
        raise InvalidInput("a monthly budget is between $0 and $1,000,000", code="bad_budget")
    with session_scope(engine) as db:
        user = db.get(User, user_id)
        if user is None:
            raise InvalidInput(f"no user {user_id}")
        user.monthly_budget_cents = None if dollars is None else round(dollars * 100)
        return user


def check_budget(engine: sa.Engine, user: User) -> None:
    """Forbidden, saying why, when the person's budget for this month is spent."""
    with session_scope(engine) as db:
        found = db.get(User, user.id)
        cents = found.monthly_budget_cents if found is not None else None
    if cents is None:
        return
    spent = this_month(engine, user.id or 0).dollars
    budget = Decimal(cents) / 100
    if spent >= budget:
        raise Forbidden(
            f"your monthly budget of {costs.dollars(budget)} is spent ({costs.dollars(spent)} since "
            f"{month_start(utcnow()):%-d %B}); an admin can raise it in Settings",
            code="budget_spent",
        )


# --- Stats --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostRow:
    name: str
    dollars: Decimal
    prompts: int


@dataclass(frozen=True)
class CostStats:
    days: int
    total: Decimal
    by_person: list[CostRow]
    by_repository: list[CostRow]
    by_automation: list[CostRow]  # the runs' sessions of each automation
    merged_prs: int
    per_merged_pr: Decimal | None  # None when nothing merged
    unpriced: bool


def stats(engine: sa.Engine, days: int) -> CostStats:
    """Cost over the last ``days`` days, by person and repository, and per merged pull request."""
    table = prices(engine)
    since = utcnow() - timedelta(days=days)
    with session_scope(engine) as db:
        people = {i: name for i, name in db.exec(select(User.id, User.name)).all() if i is not None}
        repos = {i: name for i, name in db.exec(select(Repository.id, Repository.name)).all() if i is not None}
        automations = {i: name for i, name in db.exec(select(Automation.id, Automation.name)).all() if i is not None}
        rows = db.exec(
            select(  # type: ignore[call-overload]  # 8 columns: past SQLModel's typed overloads
                PromptUsage.user_id,
                PromptUsage.repository_id,
                PromptUsage.automation_id,
                PromptUsage.model,
                PromptUsage.input,
                PromptUsage.output,
                PromptUsage.cache_read,
                PromptUsage.cache_write,
            ).where(PromptUsage.at >= since)
        ).all()
        merged = db.exec(
            select(func.count())
            .select_from(Artifact)
            .where(Artifact.type == "pr", Artifact.state == "merged", col(Artifact.updated_at) >= since)
        ).one()
    by_person: dict[int, list[tuple[str, costs.Tokens]]] = {}
    by_repo: dict[int, list[tuple[str, costs.Tokens]]] = {}
    by_automation: dict[int, list[tuple[str, costs.Tokens]]] = {}
    for user_id, repository_id, automation_id, model, *counts in rows:
        tokens = costs.Tokens(*counts)
        by_person.setdefault(user_id, []).append((model, tokens))
        by_repo.setdefault(repository_id, []).append((model, tokens))
        if automation_id is not None:
            by_automation.setdefault(automation_id, []).append((model, tokens))
    total, unpriced = costs.total([r for rs in by_person.values() for r in rs], table)

    def ranked(groups: dict[int, list[tuple[str, costs.Tokens]]], names: dict[int, str]) -> list[CostRow]:
        found = [CostRow(names.get(k, f"#{k}"), costs.total(v, table)[0], len(v)) for k, v in groups.items()]
        return sorted(found, key=lambda r: (-r.dollars, r.name))

    return CostStats(
        days=days,
        total=total,
        by_person=ranked(by_person, people),
        by_repository=ranked(by_repo, repos),
        by_automation=ranked(by_automation, automations),
        merged_prs=int(merged),
        per_merged_pr=(total / merged) if merged else None,
        unpriced=unpriced,
    )


@dataclass(frozen=True)
class BudgetRow:
    user_id: int
    name: str
    monthly_budget_cents: int | None
    spent: Decimal  # this month


def budgets(engine: sa.Engine) -> list[BudgetRow]:
    """Everyone, with their monthly budget (None: no limit) and what they spent this month."""
    with session_scope(engine) as db:
        people = db.exec(select(User).order_by(col(User.name))).all()
        found = [(u.id or 0, u.name, u.monthly_budget_cents) for u in people]
    return [BudgetRow(i, name, cents, this_month(engine, i).dollars) for i, name, cents in found]
