"""Control-plane overhead: from a prompt sent to the API to its delivery to a warm, ready sandbox.

Runs a real server and plays a connected, ready sandbox that answers each prompt at once with
``execution_complete``. Each prompt is timed from just before the API request to the moment the
sandbox receives it; the agent and the model are left out, so this is the control plane's share.
The request goes through a lean keep-alive client (``LeanHTTP``): httpx's own work per request,
about 3 ms here, would otherwise be counted as the server's. ``--httpx`` times it through httpx.

    .venv/bin/python benchmarks/prompt_latency.py [--prompts 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httpx
from _harness import FakeSandbox, LeanHTTP, seed, start, summary, table

from sandbox.protocol import ExecutionComplete, PromptCommand


async def main(count: int, use_httpx: bool) -> dict:
    server = start()
    try:
        seeded = seed(server)
        sandbox = FakeSandbox(server, seeded)
        await sandbox.connect()
        await asyncio.sleep(0.3)
        latencies: list[float] = []
        loop = asyncio.get_running_loop()
        lean = LeanHTTP(server.url, server.token)
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30
        ) as http:
            for i in range(count + 10):
                path, body = f"/api/sessions/{seeded.session_id}/prompts", {"content": f"p{i}"}
                sent = loop.time()
                if use_httpx:
                    (await http.post(path, json=body)).raise_for_status()
                else:
                    status, _ = await lean.request("POST", path, body)
                    assert status == 202, status
                while True:
                    received, command = await asyncio.wait_for(sandbox.commands.get(), 10)
                    if isinstance(command, PromptCommand):
                        break
                if i >= 10:  # the first ones warm caches and connections
                    latencies.append((received - sent) * 1000)
                await sandbox.send(ExecutionComplete(message_id=command.message_id, success=True, ack_id=f"a{i}"))
                await asyncio.sleep(0.1)  # let the completion's own work settle: measure one prompt at a time
        await sandbox.close()
        await lean.close()
        return {"prompts": len(latencies), **summary(latencies)}
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--httpx", action="store_true", help="send through httpx (its overhead included)")
    args = parser.parse_args()
    result = asyncio.run(main(args.prompts, args.httpx))
    print(table([result], ["prompts", "p50_ms", "p99_ms", "mean_ms"]))
    print(json.dumps({"p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"]}))
