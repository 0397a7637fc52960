"""Spending: each prompt's usage is recorded when it ends (``data/usage.record``, through the
plane's ``watch``), and the session's new total is announced: a ``session_cost`` event after each
prompt's end (the newest is the total; every client's header follows it). A new row, not one
updated in place, so that it always comes after the ``execution_complete`` it follows, for every
client. Prompts that ended before this existed are backfilled once at start; the people's budgets
are checked where prompts are queued (``ControlPlane.submit_prompt``)."""

from __future__ import annotations

import asyncio
import logging

from inspect_app.control import costs
from inspect_app.control.data import instance, usage
from inspect_app.control.event_data import CostData
from inspect_app.control.plane import ControlPlane

log = logging.getLogger(__name__)


class Spending:
    def __init__(self, plane: ControlPlane, *, configured_model: str) -> None:
        self._plane = plane
        self._configured_model = configured_model
        plane.watch(self._record)

    def _default_model(self) -> str:
        return instance.default_model(self._plane.engine, self._configured_model)

    async def _record(self, session_id: str) -> None:
        engine = self._plane.engine
        if not await asyncio.to_thread(lambda: usage.record(engine, session_id, self._default_model())):
            return
        spent = await asyncio.to_thread(usage.of_session, engine, session_id)
        cost = CostData(
            dollars=costs.exact(spent.dollars), display=costs.dollars(spent.dollars), unpriced=spent.unpriced
        )
        await self._plane.events.append(session_id, "session_cost", cost.stored())

    def start(self) -> None:
        """Backfill in the background (owned by the plane), a batch of sessions at a time."""
        self._plane.spawn_task(self._backfill())

    async def _backfill(self) -> None:
        total = 0
        while written := await asyncio.to_thread(lambda: usage.backfill(self._plane.engine, self._default_model())):
            total += written
        if total:
            log.info("usage backfilled for %d prompts", total)
