"""Warm sandboxes: a pool booted from a prebuilt image before anyone asks, and parked ones.

A standby is a whole sandbox — start.sh run, OpenCode up and warm — that belongs to no session
yet; the provider hands one over by telling it who it is now (``SandboxSpec.claim``). What remains
of the boot is a git fetch to the branch tip and the bridge's handshake.

One pool per repository branch, for one key (``pool_key``: the image and every variable sessions
share). Asking again with another key — a new image, a changed secret, provider key or model —
retires the old standbys and fills the pool anew, so a standby never serves a session it was not
started for. This module keeps the books; launching and discarding belong to the provider.

Parked: an idle session's sandbox, just snapshotted, kept running instead of stopped (a bounded
number, for a bounded time). Restoring that snapshot resumes it — same process, same OpenCode —
instead of booting a copy; past the time or the number it is stopped and a restore boots the copy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.providers.base import ProviderError, SandboxSpec, pool_key

log = logging.getLogger(__name__)

Pool = tuple[str, str]  # (repository url, branch)


@dataclass
class Standby:
    key: str
    root: Path
    process: asyncio.subprocess.Process

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    @property
    def ready(self) -> bool:
        """Booted (start.sh done, OpenCode warm) and waiting: the runtime's marker says so. One still
        booting is not handed out: a failure before its claim would reach nobody."""
        return self.alive and (self.root / "state" / "standby-ready").exists()


@dataclass(frozen=True)
class Want:
    key: str
    image_ref: str
    template: SandboxSpec  # a standby's spec: the sessions' shared environment, no identity
    count: int


Launch = Callable[[Want], Awaitable[Standby]]
Discard = Callable[[Standby], Awaitable[None]]


class WarmPool:
    def __init__(self, *, launch: Launch, discard: Discard, limit: int = 4) -> None:
        self._launch = launch
        self._discard = discard
        # At most this many standbys over all pools (each is a whole idle sandbox). Past it pools
        # stay short; a pool a session just took from refills at once (the take freed a place),
        # so the repositories in use keep theirs.
        self._limit = limit
        self._launching = asyncio.Lock()  # the limit is checked and a launch counted as one step
        self._wants: dict[Pool, Want] = {}
        self._standbys: dict[Pool, list[Standby]] = {}
        self._locks: dict[Pool, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def want(self, image_ref: str, spec: SandboxSpec, count: int) -> None:
        """Keep ``count`` standbys for sessions like ``spec`` (filled in the background)."""
        pool = (spec.repo_url, spec.branch)
        template = spec.without_identity("standby")
        self._wants[pool] = Want(pool_key(image_ref, spec), image_ref, template, count)
        self._background(self._settle(pool))

    def take(self, image_ref: str, spec: SandboxSpec) -> Standby | None:
        """A booted standby started for exactly this image and environment, or None."""
        pool = (spec.repo_url, spec.branch)
        key = pool_key(image_ref, spec)
        for standby in self._standbys.get(pool, []):
            if standby.key == key and standby.ready:
                self._standbys[pool].remove(standby)
                self._background(self._settle(pool))  # refill
                return standby
        return None

    def standbys(self, pool: Pool) -> list[Standby]:
        return [s for s in self._standbys.get(pool, []) if s.alive]

    def roots(self) -> set[Path]:
        return {s.root for standbys in self._standbys.values() for s in standbys}

    async def settled(self) -> None:
        """Wait for every pending fill and retirement (tests, benchmarks, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop every standby, including those a fill is launching right now (none is left behind)."""
        self._wants.clear()
        await self.settled()
        standbys = [s for pool in self._standbys.values() for s in pool]
        self._standbys.clear()
        await asyncio.gather(*(self._discard(s) for s in standbys), return_exceptions=True)

    async def _settle(self, pool: Pool) -> None:
        async with self._locks.setdefault(pool, asyncio.Lock()):
            want = self._wants.get(pool)
            standbys = self._standbys.setdefault(pool, [])
            wanted = want.count if want else 0
            stale = [s for s in standbys if not s.alive or want is None or s.key != want.key]
            excess = [s for s in standbys if s not in stale][wanted:]
            for standby in (*stale, *excess):
                standbys.remove(standby)
            for standby in (*stale, *excess):
                await self._discard(standby)
            while want is not None and len(standbys) < wanted:
                async with self._launching:
                    if self._total() >= self._limit:
                        log.info("warm pool for %s@%s stays short: %d pooled sandboxes in all", *pool, self._limit)
                        return
                    try:
                        standbys.append(await self._launch(want))
                    except ProviderError as exc:
                        log.warning("warm pool for %s@%s: %s", pool[0], pool[1], exc)
                        return

    def _total(self) -> int:
        return sum(len(standbys) for standbys in self._standbys.values())

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@dataclass
class Parked:
    session_id: str
    key: str  # the environment it runs with (``pool_key``): a restore with another one boots anew
    process: asyncio.subprocess.Process
    since: float


class ParkingLot:
    def __init__(
        self, *, capacity: int, ttl_s: float, discard: Callable[[asyncio.subprocess.Process], Awaitable[None]]
    ) -> None:
        self._capacity = capacity
        self._ttl_s = ttl_s
        self._discard = discard
        self._parked: dict[str, Parked] = {}  # by snapshot ref
        self._timers: set[asyncio.Task[None]] = set()
        self._stopping: set[asyncio.Task[None]] = set()

    def park(self, snapshot_ref: str, session_id: str, key: str, process: asyncio.subprocess.Process) -> bool:
        """Keep ``process`` for a restore of ``snapshot_ref``; False when parking is off."""
        if self._capacity <= 0 or process.returncode is not None:
            return False
        self._parked[snapshot_ref] = Parked(session_id, key, process, time.monotonic())
        while len(self._parked) > self._capacity:  # the longest parked makes room
            self.release(min(self._parked, key=lambda ref: self._parked[ref].since))
        self._own(self._timers, self._expire(snapshot_ref, process))
        return True

    async def take(self, snapshot_ref: str, session_id: str, key: str) -> asyncio.subprocess.Process | None:
        """The sandbox parked for this session's snapshot, if it runs with the environment the
        restore asks for (a secret or setting changed since: it is stopped and None returned)."""
        parked = self._parked.get(snapshot_ref)
        if parked is None or parked.session_id != session_id:
            return None
        if parked.key != key or parked.process.returncode is not None:
            await self.leave(session_id)
            return None
        del self._parked[snapshot_ref]
        return parked.process

    def release(self, snapshot_ref: str) -> None:
        """Stop what is parked for this snapshot (in the background)."""
        parked = self._parked.pop(snapshot_ref, None)
        if parked is not None:
            self._own(self._stopping, self._discard(parked.process))

    async def leave(self, session_id: str) -> None:
        """Stop what is parked for this session, and wait for it (its directory is about to be reused)."""
        for ref in [r for r, p in self._parked.items() if p.session_id == session_id]:
            self.release(ref)
        await self.settled()

    def refs(self) -> list[str]:
        return [ref for ref, p in self._parked.items() if p.process.returncode is None]

    async def settled(self) -> None:
        await asyncio.gather(*list(self._stopping), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._timers):
            task.cancel()
        for ref in list(self._parked):
            self.release(ref)
        await asyncio.gather(*list(self._timers), return_exceptions=True)
        await self.settled()

    async def _expire(self, snapshot_ref: str, process: asyncio.subprocess.Process) -> None:
        await asyncio.sleep(self._ttl_s)
        parked = self._parked.get(snapshot_ref)
        if parked is not None and parked.process is process:
            self.release(snapshot_ref)

    @staticmethod
    def _own(tasks: set[asyncio.Task[None]], coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
