"""The same tests against the in-process hub and the Redis hub."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator

import pytest

from inspect_app.control.hub import RESYNC, Hub, InProcessHub, RedisHub
from tests.conftest import IN_CI, REDIS_URL


@pytest.fixture(params=["inprocess", "redis"])
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[Hub]:
    if request.param == "inprocess":
        instance: Hub = InProcessHub()
    else:
        instance = RedisHub(REDIS_URL)
        try:
            await instance.start()
        except Exception as exc:  # noqa: BLE001
            await instance.close()
            if IN_CI:
                pytest.fail(f"Redis is required in CI: {exc}")
            pytest.skip(f"Redis unreachable: {exc}")
    yield instance
    await instance.close()


async def _collect(sub, n: int, timeout: float = 10) -> list[str]:
    out = []
    while len(out) < n:
        item = await sub.get(timeout)
        if item is None:
            break
        out.append(item)
    return out


async def test_a_hundred_subscribers_get_every_event_in_order(hub: Hub) -> None:
    channel = f"s-{os.getpid()}-order"
    subs = [await hub.subscribe(channel) for _ in range(100)]
    other = await hub.subscribe(channel + "-other")
    await asyncio.sleep(0.1)  # Redis: let SUBSCRIBE take effect
    for i in range(300):
        await hub.publish(channel, json.dumps({"seq": i}))
    results = await asyncio.gather(*(_collect(s, 300) for s in subs))
    for got in results:
        assert [json.loads(p)["seq"] for p in got] == list(range(300))
    assert await other.get(0.2) is None  # channels are separate
    for s in subs:
        s.close()


async def test_a_slow_subscriber_is_told_to_resync_and_never_blocks(hub: Hub) -> None:
    channel = f"s-{os.getpid()}-slow"
    slow = await hub.subscribe(channel)
    fast = await hub.subscribe(channel)
    await asyncio.sleep(0.1)
    reader = asyncio.create_task(_collect(fast, 2500, timeout=20))
    for i in range(2500):  # more than the queue holds; nobody reads `slow`
        await hub.publish(channel, str(i))
        await asyncio.sleep(0)  # a real publisher yields (it awaits its database writes)
    got = await reader
    assert got == [str(i) for i in range(2500)]
    first = await slow.get(5)
    assert first == RESYNC or first == "0"
    drained = [first, *(await _collect(slow, 10_000, timeout=0.5))]
    assert RESYNC in drained
    after = drained[drained.index(RESYNC) + 1 :]
    assert after == sorted(after, key=int)  # what follows the resync is in order


async def test_closing_ends_iteration(hub: Hub) -> None:
    sub = await hub.subscribe(f"s-{os.getpid()}-close")
    sub.close()
    assert [item async for item in sub] == []
