"""A follower (the session page, the extension page, the Slack watcher) that falls behind the hub
catches up from the store: every row's latest version once, nothing twice, no reload."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from inspect_app.control.data import sessions
from inspect_app.control.events import EventStore, session_channel
from inspect_app.control.follow import Follower
from inspect_app.control.hub import InProcessHub
from inspect_app.db import session_scope
from inspect_app.models import Repository, User


@pytest.fixture
async def world(sqlite_engine: sa.Engine) -> AsyncIterator[tuple[EventStore, InProcessHub, str]]:
    with session_scope(sqlite_engine) as db:
        ada, repo = User(name="Ada"), Repository(url="/srv/demo.git", name="demo")
        db.add_all([ada, repo])
        db.flush()
        ids = repo.id or 0, ada.id or 0
    sid = sessions.create(sqlite_engine, repository_id=ids[0], creator_id=ids[1]).id
    hub = InProcessHub(limit=20)  # small: falling behind takes a few rows
    store = EventStore(engine=sqlite_engine, hub=hub)
    await hub.start()
    await store.start()
    yield store, hub, sid
    await store.close()
    await hub.close()


async def test_a_follower_that_fell_behind_gets_every_row_as_it_is_now_then_the_live_tail(
    world: tuple[EventStore, InProcessHub, str],
) -> None:
    store, hub, sid = world
    subscription = await hub.subscribe(session_channel(sid))
    follower = Follower(store, sid, cursor=0)
    # written while nobody reads: more than the subscription holds, so the hub drops them for a resync
    await store.append(sid, "tool_call", {"call_id": "c1", "status": "running"}, key="tool:c1", mode="upsert")
    for i in range(60):
        await store.append(sid, "warning", {"message": f"w{i}"})
    await store.append(sid, "tool_call", {"call_id": "c1", "status": "completed"}, key="tool:c1", mode="upsert")
    await hub.publish(session_channel(sid), json.dumps({"type": "typing", "user": {"name": "Grace"}}))

    taken = await follower.take(subscription, 1.0)
    assert taken is not None and taken.caught_up and follower.catch_ups == 1
    stored = [e for e in taken.events if e.get("rev")]
    assert [e["data"]["message"] for e in stored if e["type"] == "warning"] == [f"w{i}" for i in range(60)]
    [tool] = [e for e in stored if e["type"] == "tool_call"]
    assert tool["data"]["status"] == "completed"  # the row's latest version, once
    assert [e["rev"] for e in stored] == sorted({e["rev"] for e in stored})  # revision order, none twice
    assert taken.events[-1]["type"] == "typing"  # what the hub still held and the store does not keep

    # then live again: a new row comes as it is; a write already caught up is not applied twice
    already = json.dumps(stored[-1])
    await hub.publish(session_channel(sid), already)
    await store.append(sid, "warning", {"message": "live"})
    taken = await follower.take(subscription, 1.0)
    assert taken is not None and not taken.caught_up
    assert [e["data"]["message"] for e in taken.events] == ["live"]
    assert follower.cursor == taken.events[0]["rev"]

    subscription.close()
    assert await follower.take(subscription, 1.0) is None


async def test_a_follower_that_just_subscribed_catches_up_on_what_was_written_since_its_load(
    world: tuple[EventStore, InProcessHub, str],
) -> None:
    store, hub, sid = world
    loaded = await store.append(sid, "prompt", {"content": "first"})  # what the page loaded
    assert loaded is not None
    await store.append(sid, "prompt", {"content": "between load and subscribe"})
    subscription = await hub.subscribe(session_channel(sid))
    follower = Follower(store, sid, cursor=loaded.rev)
    taken = await follower.take(subscription, 1.0, behind=True)
    assert taken is not None and taken.caught_up and follower.catch_ups == 0  # not a resync
    assert [e["data"]["content"] for e in taken.events] == ["between load and subscribe"]
    subscription.close()
