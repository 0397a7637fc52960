"""The loop-lag monitor sees a blocked event loop (what /api/health/loop reports)."""

from __future__ import annotations

import asyncio
import time

from inspect_app.loop_lag import LoopLag


async def test_a_blocking_call_on_the_loop_shows_as_lag() -> None:
    lag = LoopLag(every_s=0.02)
    sampling = asyncio.create_task(lag.run())
    try:
        while lag.report(60)["samples"] < 3:
            await asyncio.sleep(0.02)
        time.sleep(0.1)  # noqa: ASYNC251 - on purpose: what a synchronous database call on the loop does
        await asyncio.sleep(0.05)
    finally:
        sampling.cancel()
    report = lag.report(60)
    # the sample asleep across the block woke at least 100 - 20 ms late (a loaded machine: later)
    assert report["max_ms"] >= 80
    assert report["samples"] >= 4 and report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
