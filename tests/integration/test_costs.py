"""Costs and budgets with the real control plane and in-loop sandboxes whose agent reports its
steps' tokens as OpenCode does: a session's cost is exactly its steps' tokens times the prices;
usage is recorded once per prompt and backfilled for older prompts; a person over their monthly
budget is refused with the reason and nothing is queued."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlmodel import delete, select

from inspect_app.control.data import roles, sessions, usage, users
from inspect_app.db import session_scope
from inspect_app.errors import Forbidden
from inspect_app.models import Message, PromptUsage
from tests.integration.local_api import asgi
from tests.integration.test_automations import scheduled
from tests.integration.test_plane_core import Core

pytestmark = pytest.mark.timeout(60)
MODEL = "acme/coder-1"
STEPS = [
    {"input": 1234, "output": 567, "reasoning": 89, "cache": {"read": 1000, "write": 10}},
    {"input": 7, "output": 3, "reasoning": 0, "cache": {"read": 0, "write": 0}},
]
PRICES = {"input": 3.1, "output": 15, "cache_read": 0.31, "cache_write": 3.75}  # dollars per million tokens


def expected_cost(core: Core) -> Decimal:
    """Straight from the stored ``step_finish`` events: each step's tokens times the prices."""
    price = {k: Decimal(str(v)) for k, v in PRICES.items()}
    total = Decimal(0)
    for event in core.events():
        if event.type == "step_finish":
            t = event.data["tokens"]
            total += (
                Decimal(t["input"]) * price["input"]
                + Decimal(t["output"] + t["reasoning"]) * price["output"]
                + Decimal(t["cache"]["read"]) * price["cache_read"]
                + Decimal(t["cache"]["write"]) * price["cache_write"]
            ) / Decimal(1_000_000)
    return total


async def api(core: Core, method: str, path: str, **kwargs: object) -> httpx.Response:
    return await asgi(method, path, token=users.issue_api_token(core.services.engine, core.user.id or 0), **kwargs)


async def test_a_sessions_cost_is_its_steps_tokens_times_the_prices_and_a_spent_budget_refuses(core: Core) -> None:
    engine = core.services.engine
    roles.set_admin(engine, admin=True, email="ada@example.com")
    priced = await api(core, "PUT", "/api/settings/prices", json={MODEL: PRICES})
    assert priced.status_code == 200 and priced.json()["prices"][MODEL]["input"] == "3.1", priced.text
    with session_scope(engine) as db:  # the session's model
        found = sessions.get(engine, core.session_id)
        found.model = MODEL
        db.add(found)
    core.provider.steps = STEPS
    for text in ("First", "Second"):
        mid = await core.prompt(text)
        await core.until(lambda mid=mid: mid in core.ends(), "the prompt to end")
    await core.until(lambda: len(usage_rows(core)) == 2, "a usage row per prompt")
    expected = expected_cost(core)
    assert expected > 0 and len([e for e in core.events() if e.type == "step_finish"]) == 4
    snapshot = (await api(core, "GET", f"/api/sessions/{core.session_id}")).json()
    assert Decimal(snapshot["cost"]["dollars"]) == expected  # exactly
    assert snapshot["cost"]["tokens"] == {"input": 2482, "output": 1318, "cache_read": 2000, "cache_write": 20}
    first, total = [e for e in core.events() if e.type == "session_cost"]  # after each prompt: the total so far
    assert Decimal(first.data["dollars"]) * 2 == expected  # the two prompts cost the same
    assert Decimal(total.data["dollars"]) == expected and total.data["display"] == "$0.03"

    # prompts from before usage was recorded are backfilled, to the same figure
    with session_scope(engine) as db:
        db.exec(delete(PromptUsage))  # type: ignore[call-overload]
    assert usage.backfill(engine, MODEL) == 2 and usage.backfill(engine, MODEL) == 0
    assert usage.of_session(engine, core.session_id).dollars == expected

    stats = (await api(core, "GET", "/api/stats/costs", params={"days": 7})).json()
    assert stats["by_person"] == [{"name": "Ada", "dollars": str(expected), "prompts": 2}]
    assert Decimal(stats["total"]) == expected

    # a budget below what she spent this month: refused with the reason, nothing queued
    budget = await api(core, "PUT", f"/api/users/{core.user.id}/budget", json={"monthly_usd": 0.01})
    assert budget.status_code == 200, budget.text
    before = message_count(core)
    refused = await api(core, "POST", f"/api/sessions/{core.session_id}/prompts", json={"content": "Third"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "budget_spent"
    assert refused.json()["error"]["message"].startswith("your monthly budget of $0.01 is spent ($0.0")
    assert message_count(core) == before
    with pytest.raises(Forbidden, match="monthly budget"):  # every edge prompts through the plane
        await core.prompt("Fourth")
    await api(core, "PUT", f"/api/users/{core.user.id}/budget", json={"monthly_usd": None})
    assert (await api(core, "POST", f"/api/sessions/{core.session_id}/prompts", json={"content": "Fine"})).is_success


async def test_only_an_admin_sets_prices_and_budgets(core: Core) -> None:
    prices = await api(core, "PUT", "/api/settings/prices", json={MODEL: {"input": 1}})
    assert prices.status_code == 403
    budget = await api(core, "PUT", f"/api/users/{core.user.id}/budget", json={"monthly_usd": 100})
    assert budget.status_code == 403
    with session_scope(core.services.engine) as db:
        assert db.exec(select(PromptUsage)).all() == []


def usage_rows(core: Core) -> list[PromptUsage]:
    with session_scope(core.services.engine) as db:
        return list(db.exec(select(PromptUsage).where(PromptUsage.session_id == core.session_id)).all())


def message_count(core: Core) -> int:
    with session_scope(core.services.engine) as db:
        return len(db.exec(select(Message).where(Message.session_id == core.session_id)).all())


async def test_an_automations_runs_add_up_to_its_cost(core: Core) -> None:
    """A run's session acts for the automation's person and its usage is the automation's too."""
    automation = scheduled(core, model=MODEL)
    core.provider.steps = STEPS[:1]
    await core.services.automations.run_now(automation.id or 0)
    await core.until(lambda: len(usage_of(core, automation.id or 0)) == 1, "the run's usage")
    found = usage.stats(core.services.engine, 7)
    [row] = found.by_automation
    assert (row.name, row.prompts) == ("Nightly triage", 1)
    assert row.dollars == 0  # its model has no price: tokens counted, nothing spent, and said so
    assert found.unpriced and usage_of(core, automation.id or 0)[0].input == 1234


def usage_of(core: Core, automation_id: int) -> list[PromptUsage]:
    with session_scope(core.services.engine) as db:
        return list(db.exec(select(PromptUsage).where(PromptUsage.automation_id == automation_id)).all())
