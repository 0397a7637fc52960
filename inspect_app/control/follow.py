"""Following a session live: the hub's messages, with a catch-up from the store when they fall short.

A follower (the session page, the extension page, the Slack watcher) holds a subscription and a
cursor: the change feed's revision it has applied. Each batch it takes from the hub is settled here:

- normally the batch as it came, minus any stored row this follower has already applied (a row read
  during a catch-up and then also met live);
- after ``{"type": "resync"}`` (the hub dropped messages because the follower fell behind), or when
  the follower says it is behind (it just subscribed): every row changed since the cursor, each as it
  is now and in revision order, then what of the batch is not stored (presence, typing). Rows are
  stored before they are published, so nothing the hub dropped is missing from the catch-up.

The cursor only moves forward, so no (row, revision) is applied twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from inspect_app.control.events import EventStore
from inspect_app.control.hub import Subscription

log = logging.getLogger(__name__)

CATCH_UP_PAGES = 20  # of 500 rows: a follower further behind than that reloads the rest another way


@dataclass
class Batch:
    events: list[dict[str, Any]]
    caught_up: bool  # it starts with rows read from the store: a running answer may be among them


class Follower:
    def __init__(self, store: EventStore, session_id: str, cursor: int) -> None:
        self.store = store
        self.session_id = session_id
        self.cursor = cursor
        self.catch_ups = 0

    async def take(self, subscription: Subscription, timeout: float, *, behind: bool = False) -> Batch | None:
        """The next batch to apply (empty after ``timeout`` with nothing new; at once when ``behind``);
        None once the subscription is closed."""
        first = None if behind else await subscription.get(timeout)
        if first is None and subscription.closed:
            return None
        raw = ([first] if first else []) + subscription.drain_nowait()
        return await self.settle([json.loads(payload) for payload in raw], behind=behind)

    async def settle(self, batch: list[dict[str, Any]], *, behind: bool = False) -> Batch:
        """What of ``batch`` (decoded hub messages) to apply, in order; the cursor moves past it."""
        resync = any(event.get("type") == "resync" for event in batch)
        caught_up = behind or resync
        if caught_up:
            changed = await asyncio.to_thread(self._catch_up)
            if resync:
                self.catch_ups += 1
                log.warning(
                    "session %s: a follower fell behind and caught up on %d rows", self.session_id, len(changed)
                )
            batch = [*changed, *(e for e in batch if not e.get("rev") and e.get("type") != "resync")]
        else:
            batch = [e for e in batch if not e.get("rev") or int(e["rev"]) > self.cursor]
        self.cursor = max([self.cursor, *(int(e.get("rev") or 0) for e in batch)])
        return Batch(batch, caught_up)

    def _catch_up(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = self.cursor
        for _ in range(CATCH_UP_PAGES):
            changed, cursor, more = self.store.changes(self.session_id, after=cursor, limit=500)
            found += [event.to_dict() for event in changed]
            if not more:
                break
        return found
