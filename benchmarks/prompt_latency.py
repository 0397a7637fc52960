"""Control-plane overhead: from a prompt sent to the API to its delivery to a warm, ready sandbox.

Runs a real server and plays a connected, ready sandbox that answers each prompt at once with
``execution_complete``. Each prompt is timed from just before the API request to the moment the
sandbox receives it; the agent and the model are left out, so this is the control plane's share.
The request goes through a lean keep-alive client (``LeanHTTP``): httpx's own work per request,
about 3 ms here, would otherwise be counted as the server's. ``--httpx`` times it through httpx.

``--replicas 2``: two replicas on a new PostgreSQL database and the machine's Redis, the sandbox
connected to the first; prompts go alternately to the first (same replica) and to the second
(which forwards them to the first), so the two paths are compared in one run.

    .venv/bin/python benchmarks/prompt_latency.py [--prompts 200] [--replicas 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httpx
from _harness import FakeSandbox, LeanHTTP, replicas, seed, start, summary, table

from sandbox.protocol import ExecutionComplete, PromptCommand
from tests.servers import RunningServer


async def measure(servers: list[RunningServer], count: int, use_httpx: bool) -> list[dict]:
    """Prompts sent to each server in turn, all delivered to a sandbox connected to the first."""
    first = servers[0]
    seeded = seed(first)
    sandbox = FakeSandbox(first, seeded)
    await sandbox.connect()
    await asyncio.sleep(0.3)
    latencies: list[list[float]] = [[] for _ in servers]
    loop = asyncio.get_running_loop()
    lean = [LeanHTTP(s.url, s.token) for s in servers]
    clients = [
        httpx.AsyncClient(base_url=s.url, headers={"Authorization": f"Bearer {s.token}"}, timeout=30) for s in servers
    ]
    try:
        for i in range((count + 10) * len(servers)):
            which = i % len(servers)
            path, body = f"/api/sessions/{seeded.session_id}/prompts", {"content": f"p{i}"}
            sent = loop.time()
            if use_httpx:
                (await clients[which].post(path, json=body)).raise_for_status()
            else:
                status, answer = await lean[which].request("POST", path, body)
                assert status == 202, (status, answer)
            while True:
                received, command = await asyncio.wait_for(sandbox.commands.get(), 10)
                if isinstance(command, PromptCommand):
                    break
            if i >= 10 * len(servers):  # the first ones warm caches and connections
                latencies[which].append((received - sent) * 1000)
            await sandbox.send(ExecutionComplete(message_id=command.message_id, success=True, ack_id=f"a{i}"))
            await asyncio.sleep(0.1)  # let the completion's own work settle: measure one prompt at a time
    finally:
        await sandbox.close()
        for client in lean:
            await client.close()
        for http in clients:
            await http.aclose()
    paths = ["same replica", *(f"through replica {n}" for n in range(1, len(servers)))]
    return [{"path": p, "prompts": len(v), **summary(v)} for p, v in zip(paths, latencies, strict=True)]


async def main(count: int, use_httpx: bool, replica_count: int) -> list[dict]:
    if replica_count > 1:
        with replicas(replica_count) as servers:
            return await measure(servers, count, use_httpx)
    server = start()
    try:
        return await measure([server], count, use_httpx)
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--httpx", action="store_true", help="send through httpx (its overhead included)")
    parser.add_argument("--replicas", type=int, default=1, help="2: also through a second replica")
    args = parser.parse_args()
    rows = asyncio.run(main(args.prompts, args.httpx, args.replicas))
    print(table(rows, ["path", "prompts", "p50_ms", "p99_ms", "mean_ms"]))
    figures = {"p50_ms": rows[0]["p50_ms"], "p99_ms": rows[0]["p99_ms"]}
    if len(rows) > 1:
        figures |= {
            "cross_p50_ms": rows[1]["p50_ms"],
            "cross_p99_ms": rows[1]["p99_ms"],
            "cross_to_same_p50": round(rows[1]["p50_ms"] / rows[0]["p50_ms"], 2),
        }
    print(json.dumps(figures))
