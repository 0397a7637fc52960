"""How late this process's event loop runs what is due: whether anything blocks it.

Every socket of the server (browsers, API clients, sandboxes) is served by one event loop; a
database call or a long computation on it delays all of them. A task that asks to wake every
``every_s`` and notes how much later it woke measures exactly that. ``/api/health/loop`` reports it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque


def percentile(ordered: list[float], q: float) -> float:
    """The ``q``-th percentile of sorted values (nearest rank); 0 for none."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class LoopLag:
    def __init__(self, every_s: float = 0.02, keep: int = 30_000) -> None:
        self.every_s = every_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=keep)  # (monotonic time, lag in ms)

    async def run(self) -> None:
        """Sample until cancelled (owned by the server's lifespan)."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(self.every_s)
            late = loop.time() - asked - self.every_s
            self._samples.append((time.monotonic(), max(0.0, late) * 1000))

    def report(self, last_s: float) -> dict[str, float]:
        """The lag of the samples taken in the last ``last_s`` seconds."""
        since = time.monotonic() - last_s
        lags = sorted(lag for at, lag in self._samples if at >= since)
        return {
            "samples": len(lags),
            "every_ms": self.every_s * 1000,
            "p50_ms": round(percentile(lags, 50), 3),
            "p99_ms": round(percentile(lags, 99), 3),
            "max_ms": round(lags[-1], 3) if lags else 0.0,
        }
