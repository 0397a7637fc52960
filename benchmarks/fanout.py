"""Event fan-out: latency from a sandbox sending an event to each subscribed WebSocket client.

Runs a real server, plays one sandbox streaming ``token`` events at a fixed rate, and measures, for
1, 10 and 100 clients at 100 and 500 events/s, how long each event takes to reach every client
(p50/p99) and how many never arrive. The clients run in this process, so at 100 clients x 500/s the
figure includes this process's own receive work; compare ratios across rows.

    .venv/bin/python benchmarks/fanout.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from _harness import FakeSandbox, seed, start, subscribe, summary, table

from sandbox.protocol import Token


async def run_case(server, clients: int, rate: int, seconds: float) -> dict:
    seeded = seed(server)
    sockets = [await subscribe(server, seeded.session_id) for _ in range(clients)]
    sandbox = FakeSandbox(server, seeded)
    await sandbox.connect()
    await asyncio.sleep(0.3)
    total = int(rate * seconds)
    latencies: list[float] = []
    received = [0] * clients

    async def listen(index: int, ws) -> None:
        while received[index] < total:
            frame = json.loads(await ws.recv())
            now = time.monotonic()
            for message in frame["events"] if frame.get("type") == "batch" else [frame]:
                if message.get("type") == "token":
                    latencies.append((now - float(message["data"]["text"])) * 1000)
                    received[index] += 1

    listeners = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(sockets)]
    interval = 1.0 / rate
    start_at = time.monotonic()
    for i in range(total):
        target = start_at + i * interval
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await sandbox.send(Token(message_id=seeded.message_id, text=repr(time.monotonic())))
    await asyncio.wait(listeners, timeout=10 + seconds)
    for task in listeners:
        task.cancel()
    for ws in sockets:
        await ws.close()
    await sandbox.close()
    lost = total * clients - sum(received)
    return {"clients": clients, "events_per_s": rate, **summary(latencies), "lost": lost}


async def main(seconds: float, rates: list[int], client_counts: list[int]) -> list[dict]:
    server = start()
    try:
        results = []
        for rate in rates:
            for clients in client_counts:
                results.append(await run_case(server, clients, rate, seconds))
                last = results[-1]
                print(
                    f"  {clients:>3} clients @ {rate}/s: p50 {last['p50_ms']} ms, p99 {last['p99_ms']} ms", flush=True
                )
        return results
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each case")
    parser.add_argument("--rates", type=int, nargs="+", default=[100, 500], help="events per second")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 100], help="subscribed clients")
    args = parser.parse_args()
    rows = asyncio.run(main(args.seconds, args.rates, args.clients))
    print()
    print(table(rows, ["clients", "events_per_s", "p50_ms", "p99_ms", "mean_ms", "lost"]))
    print(
        json.dumps(
            {"results": [{k: r[k] for k in ("clients", "events_per_s", "p50_ms", "p99_ms", "lost")} for r in rows]}
        )
    )
