"""Event fan-out: latency from a sandbox sending an event to each subscribed WebSocket client.

Runs a real server, plays one sandbox streaming ``token`` events at a fixed rate, and measures, for
1, 10 and 100 clients at 100 and 500 events/s, how long each event takes to reach every client
(p50/p99) and how many never arrive. The clients run in this process, so at 100 clients x 500/s the
figure includes this process's own receive work; compare ratios across rows.

``--replicas 2``: two replicas on a new PostgreSQL database and the machine's Redis, the sandbox
connected to the first, the clients in ``--procs`` processes of their own (``_followers.py``). Each
case runs twice in the run: every client on the first replica, then the clients spread over both
(each process follows one replica), so the two are compared as a ratio.

    .venv/bin/python benchmarks/fanout.py [--seconds 3] [--replicas 2 --clients 200 --rates 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from _harness import FakeSandbox, replicas, seed, spawn_followers, start, subscribe, summary, table

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


async def run_spread(servers, clients: int, rate: int, seconds: float, procs: int) -> dict:
    """One case with the clients in processes of their own, spread over ``servers`` (the sandbox is
    connected to the first)."""
    seeded = seed(servers[0])
    total = int(rate * seconds)
    followers = spawn_followers(servers, seeded.session_id, clients, procs, total, seconds + 20)
    for process in followers:  # every client subscribed before the first event
        line = await asyncio.to_thread(process.stdout.readline)
        assert line.strip() == "ready", line
    sandbox = FakeSandbox(servers[0], seeded)
    await sandbox.connect()
    await asyncio.sleep(0.3)
    began = time.monotonic()
    for i in range(total):
        delay = began + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await sandbox.send(Token(message_id=seeded.message_id, text=repr(time.monotonic())))
    outputs = [json.loads((await asyncio.to_thread(p.communicate))[0].splitlines()[-1]) for p in followers]
    await sandbox.close()
    arrived = [x for out in outputs for x in out["latencies"]]
    lost = total * clients - sum(out["received"] for out in outputs)
    return {
        "replicas": len(servers),
        "clients": clients,
        "events_per_s": rate,
        **summary(arrived),
        "lost": lost,
    }


async def main_replicas(count: int, seconds: float, rates: list[int], client_counts: list[int], procs: int) -> list:
    results = []
    with replicas(count) as servers:
        for rate in rates:
            for clients in client_counts:
                for spread in (servers[:1], servers):
                    results.append(await run_spread(spread, clients, rate, seconds, procs))
                    last = results[-1]
                    print(
                        f"  {clients:>3} clients @ {rate}/s on {len(spread)} replica(s): "
                        f"p50 {last['p50_ms']} ms, p99 {last['p99_ms']} ms, lost {last['lost']}",
                        flush=True,
                    )
    return results


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
    parser.add_argument("--replicas", type=int, default=1, help="2: also with the clients spread over two")
    parser.add_argument("--procs", type=int, default=4, help="client processes (with --replicas)")
    args = parser.parse_args()
    if args.replicas > 1:
        rows = asyncio.run(main_replicas(args.replicas, args.seconds, args.rates, args.clients, args.procs))
        keys = ["replicas", "clients", "events_per_s", "p50_ms", "p99_ms", "mean_ms", "lost"]
    else:
        rows = asyncio.run(main(args.seconds, args.rates, args.clients))
        keys = ["clients", "events_per_s", "p50_ms", "p99_ms", "mean_ms", "lost"]
    print()
    print(table(rows, keys))
    figures: dict = {"results": [{k: r[k] for k in keys if k != "mean_ms"} for r in rows]}
    if args.replicas > 1:
        pairs = zip(rows[::2], rows[1::2], strict=True)
        figures["spread_to_one_p99"] = [round(b["p99_ms"] / a["p99_ms"], 2) for a, b in pairs]
    print(json.dumps(figures))
