"""Clients that follow one session over /api/sessions/{id}/ws, run in a process of their own so their
receive work is not the server's or the sender's. Each streamed ``token`` carries the monotonic time
it was sent (the clock is the machine's, shared by processes), so each arrival gives a latency.

    python benchmarks/_followers.py URL TOKEN SESSION CLIENTS EVENTS DEADLINE_S

Prints ``ready`` once every client is subscribed, then, when each has ``EVENTS`` tokens (or
``DEADLINE_S`` after ready), one JSON line: how many arrived and their latencies in ms.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import websockets


async def follow(url: str, token: str, events: int, latencies: list[float], counts: list[int], i: int) -> None:
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "token": token}))
        while json.loads(await ws.recv())["type"] != "snapshot":
            pass
        counts[i] = 0
        while counts[i] < events:
            frame = json.loads(await ws.recv())
            now = time.monotonic()
            for message in frame["events"] if frame.get("type") == "batch" else [frame]:
                if message.get("type") == "token":
                    latencies.append((now - float(message["data"]["text"])) * 1000)
                    counts[i] += 1


async def main(base: str, token: str, session_id: str, clients: int, events: int, deadline_s: float) -> None:
    url = base.replace("http://", "ws://") + f"/api/sessions/{session_id}/ws"
    latencies: list[float] = []
    counts = [-1] * clients
    tasks = [asyncio.create_task(follow(url, token, events, latencies, counts, i)) for i in range(clients)]
    while min(counts) < 0:
        await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.wait(tasks, timeout=deadline_s)
    for task in tasks:
        task.cancel()
    out = {"received": sum(counts), "cpu_s": time.process_time(), "latencies": [round(x, 3) for x in latencies]}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    url, token, session, clients, events, deadline = sys.argv[1:7]
    asyncio.run(main(url, token, session, int(clients), int(events), float(deadline)))
