"""Publish/subscribe per channel (a session's events, presence, control kicks).

Two implementations behind one interface: in-process (the embedded default) and Redis pub/sub
(``INSPECT_REDIS_URL``, for several workers). Payloads are strings, encoded once by the publisher
and handed to every subscriber as is.

Invariants (both implementations):
- a subscriber gets the messages of its channel in publish order;
- publishing never waits on a subscriber: each has a bounded queue, and one that falls behind gets
  ``RESYNC`` once (then the messages after it) and must reload from the event store;
- ``close()`` of a subscription ends its iterator.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, cast

log = logging.getLogger(__name__)

RESYNC = '{"type":"resync"}'
QUEUE_LIMIT = 2000
CHANNEL_PREFIX = "inspect:"


class Subscription:
    """One subscriber's bounded queue. Iterate it; ``close()`` when done."""

    def __init__(self, channel: str, on_close: object = None, limit: int = QUEUE_LIMIT) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._limit = limit
        self._overflowed = False
        self._closed = False
        self._on_close = on_close

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def waiting(self) -> int:
        """How many payloads are queued now (a consumer that sees some after its work is behind)."""
        return self._queue.qsize()

    def deliver(self, payload: str) -> None:
        if self._closed:
            return
        if self._queue.qsize() >= self._limit:
            if not self._overflowed:
                self._overflowed = True
                self._drain()
                self._queue.put_nowait(RESYNC)
            return
        self._overflowed = False
        self._queue.put_nowait(payload)

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    async def get(self, timeout: float | None = None) -> str | None:
        """The next payload; None once closed (or on timeout)."""
        if timeout is None:
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    def drain_nowait(self, limit: int = 500) -> list[str]:
        """What is queued now (up to ``limit``), without waiting; stops at a close."""
        items: list[str] = []
        while len(items) < limit and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                self._queue.put_nowait(None)  # keep the close for the next get
                break
            items.append(item)
        return items

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)
            if callable(self._on_close):
                self._on_close(self)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item


class Hub(abc.ABC):
    @abc.abstractmethod
    async def publish(self, channel: str, payload: str) -> None: ...

    @abc.abstractmethod
    async def subscribe(self, channel: str) -> Subscription: ...

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect to the backing service, if any."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; end every subscription."""


class _LocalFanout:
    """Channel → subscriptions, delivering in the caller's loop."""

    def __init__(self, limit: int = QUEUE_LIMIT) -> None:
        self.subscribers: dict[str, set[Subscription]] = {}
        self._limit = limit

    def add(self, channel: str) -> Subscription:
        sub = Subscription(channel, on_close=self.remove, limit=self._limit)
        self.subscribers.setdefault(channel, set()).add(sub)
        return sub

    def remove(self, sub: Subscription) -> None:
        subs = self.subscribers.get(sub.channel)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subscribers[sub.channel]

    def deliver(self, channel: str, payload: str) -> None:
        for sub in list(self.subscribers.get(channel, ())):
            sub.deliver(payload)

    def close_all(self) -> None:
        for subs in list(self.subscribers.values()):
            for sub in list(subs):
                sub.close()


class InProcessHub(Hub):
    def __init__(self, limit: int = QUEUE_LIMIT) -> None:
        self._fanout = _LocalFanout(limit)

    async def publish(self, channel: str, payload: str) -> None:
        self._fanout.deliver(channel, payload)

    async def subscribe(self, channel: str) -> Subscription:
        return self._fanout.add(channel)

    async def close(self) -> None:
        self._fanout.close_all()


class RedisHub(Hub):
    """Redis pub/sub. One connection reads every channel this process listens to."""

    def __init__(self, url: str, limit: int = QUEUE_LIMIT) -> None:
        import redis.asyncio as redis  # imported here: the embedded default needs no Redis

        self._redis = redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._fanout = _LocalFanout(limit)
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()

    async def start(self) -> None:
        await asyncio.wait_for(cast("Awaitable[bool]", self._redis.ping()), 5)  # the asyncio client's
        # a placeholder subscription keeps the pubsub connection open for the reader
        await self._pubsub.subscribe(f"{CHANNEL_PREFIX}__hub__")
        self._reader = asyncio.create_task(self._read(), name="redis-hub-reader")

    async def publish(self, channel: str, payload: str) -> None:
        await asyncio.wait_for(self._redis.publish(CHANNEL_PREFIX + channel, payload), 5)

    async def subscribe(self, channel: str) -> Subscription:
        async with self._lock:
            first = channel not in self._fanout.subscribers
            sub = self._fanout.add(channel)
            if first:
                await asyncio.wait_for(self._pubsub.subscribe(CHANNEL_PREFIX + channel), 5)
        sub._on_close = self._unsubscribe_later
        return sub

    def _unsubscribe_later(self, sub: Subscription) -> None:
        self._fanout.remove(sub)
        if sub.channel not in self._fanout.subscribers and self._reader is not None:
            task: asyncio.Future[Any] = asyncio.ensure_future(self._pubsub.unsubscribe(CHANNEL_PREFIX + sub.channel))
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except Exception as exc:  # noqa: BLE001 - keep reading through a Redis hiccup
                log.warning("redis hub read failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            if message and message.get("type") == "message":
                channel = str(message["channel"]).removeprefix(CHANNEL_PREFIX)
                self._fanout.deliver(channel, str(message["data"]))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self._fanout.close_all()
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
            await self._redis.aclose()


def build_hub(redis_url: str, limit: int = QUEUE_LIMIT) -> Hub:
    return RedisHub(redis_url, limit) if redis_url else InProcessHub(limit)
