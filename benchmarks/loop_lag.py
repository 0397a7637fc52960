"""Event-loop lag of the server while clients in other processes follow a session and prompts run.

Runs a real server and reads its own loop-lag monitor (``/api/health/loop``: how late a task that
wakes every 20 ms wakes). First idle, then under load: ``--clients`` WebSocket clients, split over
``--procs`` processes of their own, follow session A while a fake sandbox streams ``token`` events
to it at ``--rate`` per second; meanwhile prompts go to session B through the API one after
another (its fake sandbox completes each at once), so the database path of prompts runs too.
Also printed: how late the events reached the clients, how many never did, and the prompts'
delivery latency under that load.

    .venv/bin/python benchmarks/loop_lag.py [--clients 100] [--rate 500] [--seconds 10] [--procs 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import httpx
from _harness import FakeSandbox, seed, spawn_followers, start, summary, table

from sandbox.protocol import ExecutionComplete, PromptCommand, Token
from sandbox.providers.processes import descendants

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(root: int) -> float:
    """CPU time used so far by process ``root`` and its descendants (the server is a process tree)."""
    used = 0.0
    for pid in [root, *descendants(root)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        used += (int(fields[11]) + int(fields[12])) / TICKS
    return used


async def lag(http: httpx.AsyncClient, seconds: float) -> dict:
    response = await http.get("/api/health/loop", params={"seconds": seconds})
    response.raise_for_status()
    return response.json()


async def prompts_until(http: httpx.AsyncClient, sandbox: FakeSandbox, session_id: str, stop: asyncio.Event) -> list:
    """Prompts to ``session_id`` one at a time until ``stop``; each one's API-to-sandbox time in ms."""
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    i = 0
    while not stop.is_set():
        sent = loop.time()
        (await http.post(f"/api/sessions/{session_id}/prompts", json={"content": f"p{i}"})).raise_for_status()
        while True:
            received, command = await asyncio.wait_for(sandbox.commands.get(), 30)
            if isinstance(command, PromptCommand):
                break
        latencies.append((received - sent) * 1000)
        await sandbox.send(ExecutionComplete(message_id=command.message_id, success=True, ack_id=f"a{i}"))
        i += 1
        await asyncio.sleep(0.1)
    return latencies


async def main(clients: int, rate: int, seconds: float, procs: int) -> dict:
    server = start()
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30
        ) as http:
            await asyncio.sleep(seconds)
            idle = await lag(http, seconds)
            print(f"  idle: p50 {idle['p50_ms']} ms, p99 {idle['p99_ms']} ms", flush=True)

            streamed, prompted = seed(server), seed(server)
            total = int(rate * seconds)
            followers = spawn_followers([server], streamed.session_id, clients, procs, total, seconds + 20)
            for process in followers:  # every client subscribed before the first event
                line = await asyncio.to_thread(process.stdout.readline)
                assert line.strip() == "ready", line
            stream, answerer = FakeSandbox(server, streamed), FakeSandbox(server, prompted)
            await stream.connect()
            await answerer.connect()
            await asyncio.sleep(0.5)
            stop = asyncio.Event()
            prompting = asyncio.create_task(prompts_until(http, answerer, prompted.session_id, stop))
            began, server_cpu, own_cpu = time.monotonic(), cpu_seconds(server.process.pid), time.process_time()
            for i in range(total):
                delay = began + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await stream.send(Token(message_id=streamed.message_id, text=repr(time.monotonic())))
            wall = time.monotonic() - began
            loaded = await lag(http, wall)
            cpu = {"server": cpu_seconds(server.process.pid) - server_cpu, "sender": time.process_time() - own_cpu}
            stop.set()
            prompt_ms = await prompting
            outputs = [json.loads((await asyncio.to_thread(p.communicate))[0].splitlines()[-1]) for p in followers]
            await stream.close()
            await answerer.close()
    finally:
        server.stop()
    cpu["clients"] = sum(out["cpu_s"] for out in outputs)  # their whole life: an upper bound
    arrived = [x for out in outputs for x in out["latencies"]]
    rows = [
        {"phase": "idle", **{k: idle[k] for k in ("samples", "p50_ms", "p99_ms", "max_ms")}},
        {
            "phase": f"{clients} clients x {rate}/s + prompts",
            **{k: loaded[k] for k in ("samples", "p50_ms", "p99_ms", "max_ms")},
        },
    ]
    print()
    print("event-loop lag of the server")
    print(table(rows, ["phase", "samples", "p50_ms", "p99_ms", "max_ms"]))
    fanout = summary(arrived)
    prompts = summary(prompt_ms)
    lost = total * clients - sum(out["received"] for out in outputs)
    print()
    print(
        f"events to the clients: p50 {fanout['p50_ms']} ms, p99 {fanout['p99_ms']} ms, lost {lost} of {total * clients}"
    )
    shares = ", ".join(f"{who} {100 * used / wall:.0f}%" for who, used in cpu.items())
    print(f"CPU while loaded:      {shares} of one core ({os.cpu_count()} cores)")
    print(f"prompts under load:    {len(prompt_ms)} sent, p50 {prompts['p50_ms']} ms, p99 {prompts['p99_ms']} ms")
    return {
        "clients": clients,
        "events_per_s": rate,
        "idle_lag_p50_ms": idle["p50_ms"],
        "idle_lag_p99_ms": idle["p99_ms"],
        "lag_p50_ms": loaded["p50_ms"],
        "lag_p99_ms": loaded["p99_ms"],
        "lag_max_ms": loaded["max_ms"],
        "events_p50_ms": fanout["p50_ms"],
        "events_p99_ms": fanout["p99_ms"],
        "lost": lost,
        "prompts": len(prompt_ms),
        "prompt_p50_ms": prompts["p50_ms"],
        "prompt_p99_ms": prompts["p99_ms"],
        **{f"cpu_{who}_pct": round(100 * used / wall) for who, used in cpu.items()},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=int, default=500, help="events per second streamed to the followed session")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the idle and the loaded phase")
    parser.add_argument("--procs", type=int, default=4, help="processes the clients are spread over")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.clients, args.rate, args.seconds, args.procs))))
