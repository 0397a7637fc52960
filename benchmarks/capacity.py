"""How many sessions one server runs at once: real local sandboxes, the real OpenCode, a scripted model.

For N = 5, 10, 20, ... (up to ``--max``): a fresh server, N sessions created at once (each sandbox
boots as its session is created), then one prompt sent to each at the same moment. N passes when
every prompt completes and Send → first agent event has p99 ≤ 2 s. Also the memory (PSS) of an idle
sandbox (booted, waiting) and of an active one (its prompt streaming), medians per sandbox, so
an operator can size a machine: memory / per-sandbox figure, and the largest N that passed here.

    .venv/bin/python benchmarks/capacity.py [--max 20]

The last line is one JSON object: ``{"largest_n", "runs": [{n, boot_p50_s, boot_max_s,
first_event_p50_ms, first_event_p99_ms, completed, idle_mb, active_mb, passed}]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _harness import table

from tests.fakes.llm_server import MODEL, FakeLLM, Turn
from tests.integration.sandbox_harness import make_origin, sandbox_processes
from tests.integration.stream_client import Client
from tests.servers import RunningServer, start_server

FIRST_EVENT_P99_S = 2.0
STREAM = Turn(text="working " * 50, chunk_delay_s=0.05, chunk_size=16)  # about 1.3 s of answer


def memory_mb(pids: list[int]) -> float:
    """Proportional set size of these processes: shared pages (the OpenCode binary, libraries) are
    split among the processes that map them, so a sum over sandboxes is what they take together."""
    total_kb = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
    return total_kb / 1024


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def run(n: int, llm: FakeLLM) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="inspect-capacity-"))
    env = {"INSPECT_LLM_BASE_URL": llm.base_url, "INSPECT_LLM_MODEL": MODEL, "INSPECT_IDLE_TIMEOUT_S": "3600"}
    server = start_server(workdir, INSPECT_LOG_LEVEL="WARNING", **env)
    try:
        return await measure(server, n, llm, make_origin(workdir))
    finally:
        server.stop()


async def measure(server: RunningServer, n: int, llm: FakeLLM, origin: Path) -> dict:
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as http:
        repo = (await http.post("/api/repositories", json={"url": str(origin)})).json()["id"]
        began = time.monotonic()
        created = await asyncio.gather(*(http.post("/api/sessions", json={"repository_id": repo}) for _ in range(n)))
        ids = [c.json()["id"] for c in created]
        ready_at: dict[str, float] = {}
        deadline = began + 600
        while len(ready_at) < n and time.monotonic() < deadline:
            for sid in ids:
                if (
                    sid not in ready_at
                    and (await http.get(f"/api/sessions/{sid}")).json()["session"]["status"] == "ready"
                ):
                    ready_at[sid] = time.monotonic() - began
            await asyncio.sleep(0.2)
        if len(ready_at) < n:
            return {"n": n, "passed": False, "why": f"{n - len(ready_at)} sandboxes never became ready"}
    idle = statistics.median(memory_mb(sandbox_processes(sid)) for sid in ids)
    for _ in range(n):
        llm.add(STREAM)
    clients = [Client(server, sid, server.token) for sid in ids]
    for client in clients:
        await client.__aenter__()
    try:
        sent = time.monotonic()
        await asyncio.gather(*(c.send({"type": "prompt", "content": "Go", "client_request_id": "c1"}) for c in clients))
        firsts = await asyncio.gather(*(first_event(c, sent) for c in clients))
        active = statistics.median(memory_mb(sandbox_processes(sid)) for sid in ids)  # while they stream
        ends = await asyncio.gather(*(c.wait(lambda m: m["type"] == "execution_complete", "end", 300) for c in clients))
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)
    completed = sum(1 for e in ends if e["data"]["success"])
    first_ms = [f * 1000 for f in firsts]
    return {
        "n": n,
        "boot_p50_s": round(statistics.median(ready_at.values()), 2),
        "boot_max_s": round(max(ready_at.values()), 2),
        "first_event_p50_ms": round(statistics.median(first_ms)),
        "first_event_p99_ms": round(p99(first_ms)),
        "completed": completed,
        "idle_mb": round(idle),
        "active_mb": round(active),
        "passed": completed == n and p99(firsts) <= FIRST_EVENT_P99_S,
    }


async def first_event(client: Client, sent: float) -> float:
    await client.wait(lambda m: m["type"] in ("token", "tool_call"), "the first agent event", 120)
    return time.monotonic() - sent


async def main(largest: int) -> list[dict]:
    rows = []
    with FakeLLM() as llm:
        n = 5
        while n <= largest:
            row = await run(n, llm)
            rows.append(row)
            print(f"  N={n}: {row}", flush=True)
            if not row["passed"]:
                break
            n *= 2
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=20, help="the largest N to try (5, 10, 20, 40, ...)")
    args = parser.parse_args()
    rows = asyncio.run(main(args.max))
    columns = ["n", "boot_p50_s", "boot_max_s", "first_event_p50_ms", "first_event_p99_ms", "completed"]
    print()
    print(table([r for r in rows if "completed" in r], [*columns, "idle_mb", "active_mb", "passed"]))
    passed = [r["n"] for r in rows if r["passed"]]
    print(json.dumps({"largest_n": max(passed, default=0), "runs": rows}))
