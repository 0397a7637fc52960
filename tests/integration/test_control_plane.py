"""The control plane end to end: a real server process, local sandboxes, the real OpenCode, a scripted model."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.fakes.llm_server import MODEL, FakeLLM, Turn
from tests.fakes.llm_server import ToolCall as LLMToolCall
from tests.integration.sandbox_harness import git, make_origin, require_opencode
from tests.servers import ROOT, RunningServer, start_server

pytestmark = [pytest.mark.timeout(300)]


def bash(command: str) -> LLMToolCall:
    return LLMToolCall("bash", {"command": command, "description": "run a command"})


def create_user(server: RunningServer, name: str, email: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSPECT_")}
    env.update({"INSPECT_DATA_DIR": str(server.data_dir)})
    result = subprocess.run(
        [sys.executable, "-m", "inspect_app.admin", "create-user", "--name", name, "--email", email],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


class Client:
    """A WebSocket client of the session stream, recording everything it receives."""

    def __init__(self, server: RunningServer, session_id: str, token: str) -> None:
        self.url = server.url.replace("http://", "ws://") + f"/api/sessions/{session_id}/ws"
        self.token = token
        self.received: list[dict[str, Any]] = []
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Client:
        self._ws = await websockets.connect(self.url, open_timeout=10)
        await self._ws.send(json.dumps({"type": "subscribe", "token": self.token}))
        self._reader = asyncio.create_task(self._read())
        await self.wait(lambda m: m["type"] == "snapshot", "snapshot")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._reader:
            self._reader.cancel()
        await self._ws.close()

    async def _read(self) -> None:
        async for raw in self._ws:
            self.received.append(json.loads(raw))

    async def send(self, message: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(message))

    async def wait(self, predicate: Any, what: str, timeout: float = 90) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for message in self.received:
                if predicate(message):
                    return message
            if asyncio.get_running_loop().time() > deadline:
                kinds = [m.get("type") for m in self.received][-25:]
                raise TimeoutError(f"no {what}; last: {kinds}")
            await asyncio.sleep(0.05)

    def stored(self) -> list[tuple[int, str, str | None]]:
        """Stored events seen live (seq, type, message id), excluding token deltas of the text rows."""
        return [
            (m["seq"], m["type"], m.get("message_id"))
            for m in self.received
            if "seq" in m and m["type"] not in ("token", "tool_call", "text")
        ]


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM) -> Iterator[RunningServer]:
    require_opencode()
    running = start_server(
        tmp_path_factory.mktemp("cp"),
        INSPECT_LLM_BASE_URL=llm.base_url,
        INSPECT_LLM_MODEL=MODEL,
        INSPECT_IDLE_TIMEOUT_S="600",
    )
    yield running
    running.stop()


def api(server: RunningServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def test_two_people_share_one_session_stream(server: RunningServer, llm: FakeLLM, tmp_path: Path) -> None:
    ada = create_user(server, "Ada Lovelace", "ada@example.com")
    grace = create_user(server, "Grace Hopper", "grace@example.com")
    origin = make_origin(tmp_path)
    with api(server, ada) as http:
        repo = http.post("/api/repositories", json={"url": str(origin)})
        assert repo.status_code == 201, repo.text
        created = http.post("/api/sessions", json={"repository_id": repo.json()["id"]})
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
    async with Client(server, session_id, ada) as one, Client(server, session_id, grace) as two:
        await one.wait(lambda m: m.get("type") == "sandbox_status" and m["data"]["status"] == "ready", "ready", 120)
        llm.add(
            Turn(tool_calls=[bash("echo a > a.txt && git add a.txt && git commit -qm 'From Ada'")]),
            Turn(text="Done one."),
            Turn(tool_calls=[bash("echo b > b.txt && git add b.txt && git commit -qm 'From Grace'")]),
            Turn(text="Done two."),
        )
        await one.send({"type": "prompt", "content": "Add a.txt", "client_request_id": "r1"})
        accepted = await one.wait(lambda m: m["type"] == "prompt_accepted", "accepted")
        await two.send({"type": "prompt", "content": "Add b.txt", "client_request_id": "r2"})
        queued = await two.wait(lambda m: m["type"] == "prompt_accepted", "accepted")
        first, second = accepted["message_id"], queued["message_id"]
        for client in (one, two):
            for mid in (first, second):
                await client.wait(
                    lambda m, mid=mid: m["type"] == "execution_complete" and m["message_id"] == mid,
                    f"completion of {mid}",
                    120,
                )
        await asyncio.sleep(0.5)
        assert one.stored() == two.stored()  # the same ordered stream for everyone
        seqs = [s for s, _, _ in one.stored()]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
        prompts = [m for m in one.received if m["type"] == "prompt"]
        assert [(p["data"]["author"]["name"], p["data"]["content"]) for p in prompts] == [
            ("Ada Lovelace", "Add a.txt"),
            ("Grace Hopper", "Add b.txt"),
        ]
        done = [m for m in one.received if m["type"] == "execution_complete"]
        assert [d["message_id"] for d in done] == [first, second] and all(d["data"]["success"] for d in done)
        assert done[1]["data"]["author"]["name"] == "Grace Hopper"
        texts = "".join(m["data"]["text"] for m in one.received if m["type"] == "token" and m["message_id"] == second)
        assert texts == "Done two."
    workspace = server.data_dir / "sandboxes" / session_id / "workspace"
    log = git("log", "--format=%an|%s", "-2", cwd=workspace).strip().splitlines()
    assert log == ["Grace Hopper|From Grace", "Ada Lovelace|From Ada"]
    with api(server, grace) as http:
        page = http.get(f"/api/sessions/{session_id}/events", params={"after": 0, "limit": 500}).json()
        stored = page["events"]
        assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))  # no gap, no duplicate
        text_rows = [e for e in stored if e["type"] == "text"]
        assert [r["data"]["text"] for r in text_rows] == ["Done one.", "Done two."]  # one growing row per answer
        detail = http.get(f"/api/sessions/{session_id}").json()
        assert detail["queue"] == [] and detail["session"]["status"] == "ready"
