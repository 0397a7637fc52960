"""Outside services (Slack, GitHub, the model endpoint): how each is doing, and trying again.

An outside service being down degrades the feature that needs it; it never stops the app from
starting or serving. Each integration reports what it last saw here (``ok``, or ``degraded`` with
the reason) and ``/api/health`` lists them. ``keep_trying`` is the one retry loop: capped
exponential backoff with jitter, until the attempt succeeds or its owner cancels it;
``keep_watching`` connects that way, then checks again every so often, so a service that goes down
later shows as degraded too (and recovers the same way).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from inspect_app.models import utcnow

log = logging.getLogger(__name__)

State = Literal["ok", "degraded"]


@dataclass(frozen=True)
class Status:
    state: State
    reason: str = ""
    since: datetime = field(default_factory=utcnow)


class Integrations:
    def __init__(self) -> None:
        self._status: dict[str, Status] = {}

    def ok(self, name: str) -> None:
        if self._status.get(name, Status("degraded")).state != "ok":
            if name in self._status:
                log.info("%s is reachable again", name)
            self._status[name] = Status("ok")

    def degraded(self, name: str, reason: str) -> None:
        previous = self._status.get(name)
        if previous is None or previous.state != "degraded" or previous.reason != reason:
            log.warning("%s is degraded: %s", name, reason)
            # since: when it stopped working, not when the reason last changed
            since = previous.since if previous is not None and previous.state == "degraded" else utcnow()
            self._status[name] = Status("degraded", reason, since)

    def get(self, name: str) -> Status | None:
        return self._status.get(name)

    def report(self) -> dict[str, dict[str, str]]:
        return {
            name: {"status": s.state, "since": s.since.isoformat(), **({"reason": s.reason} if s.reason else {})}
            for name, s in sorted(self._status.items())
        }


def describe(exc: BaseException) -> str:
    """An exception as a reason a person can act on (connection errors are often wordless)."""
    text = str(exc).strip() or repr(exc)
    return f"{type(exc).__name__}: {text}"[:300]


async def probe_model(base_url: str, api_key: str) -> None:
    """Whether the model endpoint (OpenAI-compatible) answers: its model list, within 10 s."""
    import httpx  # here: only a server with a model endpoint configured needs it

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(base_url.rstrip("/") + "/models", headers=headers)
    if response.status_code >= 500 or response.status_code in (401, 403):
        raise RuntimeError(f"the model endpoint answered HTTP {response.status_code}")


async def keep_trying(
    name: str,
    attempt: Callable[[], Awaitable[None]],
    integrations: Integrations,
    *,
    first_wait_s: float = 1.0,
    longest_wait_s: float = 30.0,
) -> None:
    """Run ``attempt`` until it succeeds: each failure marks ``name`` degraded with its reason, then
    waits (doubling from ``first_wait_s`` up to ``longest_wait_s``, with jitter) and tries again."""
    wait = first_wait_s
    while True:
        try:
            await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of an outside service is retried, not raised
            integrations.degraded(name, describe(exc))
            await asyncio.sleep(wait * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto
            wait = min(wait * 2, longest_wait_s)
            continue
        integrations.ok(name)
        return


async def keep_watching(
    name: str,
    check: Callable[[], Awaitable[None]],
    integrations: Integrations,
    *,
    every_s: float,
    connect: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """``connect`` (or ``check``) until it succeeds, then ``check`` every ``every_s`` seconds, each
    failure retried as ``keep_trying`` does; runs until its owner cancels it."""
    await keep_trying(name, connect or check, integrations)
    while True:
        await asyncio.sleep(every_s)
        await keep_trying(name, check, integrations)
