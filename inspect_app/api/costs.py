"""Costs: model prices (admins set them), people's monthly budgets (admins), and what was spent
(``control/data/usage.py``). Amounts are strings of exact decimal dollars."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from inspect_app.api.deps import CurrentUser, ServicesDep
from inspect_app.control import costs
from inspect_app.control.data import usage
from inspect_app.control.plane import cost_public

router = APIRouter(prefix="/api", tags=["costs"])


def _prices(table: dict[str, costs.Price]) -> dict[str, dict[str, str]]:
    return {model: {k: str(getattr(p, k)) for k in costs.KINDS} for model, p in sorted(table.items())}


@router.get("/settings/prices")
async def get_prices(services: ServicesDep, _user: CurrentUser) -> dict[str, Any]:
    """USD per million tokens, per model: the defaults with the admins' overrides."""
    return {"prices": _prices(await asyncio.to_thread(usage.prices, services.engine))}


@router.put("/settings/prices")
async def put_prices(body: dict[str, dict[str, float]], services: ServicesDep, user: CurrentUser) -> dict[str, Any]:
    """Replace the overrides: ``{"provider/model": {"input": 3, "output": 15, "cache_read": 0.3}}``."""
    table = await asyncio.to_thread(usage.set_prices, services.engine, body, actor_id=user.id or 0)
    return {"prices": _prices(table)}


class BudgetPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    monthly_usd: float | None = Field(description="Dollars a month; null for no limit")


@router.put("/users/{user_id}/budget")
async def put_budget(user_id: int, body: BudgetPut, services: ServicesDep, user: CurrentUser) -> dict[str, Any]:
    changed = await asyncio.to_thread(
        usage.set_budget, services.engine, user_id, body.monthly_usd, actor_id=user.id or 0
    )
    spent = await asyncio.to_thread(usage.this_month, services.engine, user_id)
    cents = changed.monthly_budget_cents
    return {"user_id": user_id, "monthly_usd": None if cents is None else cents / 100, "this_month": cost_public(spent)}


@router.get("/me/spending")
async def my_spending(services: ServicesDep, user: CurrentUser) -> dict[str, Any]:
    spent = await asyncio.to_thread(usage.this_month, services.engine, user.id or 0)
    cents = user.monthly_budget_cents
    return {"monthly_usd": None if cents is None else cents / 100, "this_month": cost_public(spent)}


@router.get("/stats/costs")
async def cost_stats(
    services: ServicesDep, _user: CurrentUser, days: int = Query(default=30, ge=1, le=366)
) -> dict[str, Any]:
    found = await asyncio.to_thread(usage.stats, services.engine, days)

    def rows(items: list[usage.CostRow]) -> list[dict[str, Any]]:
        return [{"name": r.name, "dollars": costs.exact(r.dollars), "prompts": r.prompts} for r in items]

    return {
        "days": found.days,
        "total": costs.exact(found.total),
        "by_person": rows(found.by_person),
        "by_repository": rows(found.by_repository),
        "by_automation": rows(found.by_automation),
        "merged_prs": found.merged_prs,
        "per_merged_pr": None if found.per_merged_pr is None else costs.exact(found.per_merged_pr),
        "unpriced": found.unpriced,
    }
