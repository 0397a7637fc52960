"""Child sessions end to end: a real server, local sandboxes, the real OpenCode running Inspect's
session tools, and a scripted model with a script per conversation (a parent and its children run
at once). The parent's agent spawns two children on two repositories its repository allows; both
run; the parent reads their answers with ``session-status``; a child's attempt to spawn is refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from tests.fakes.llm_server import FakeLLM, ToolCall, Turn
from tests.integration.sandbox_harness import make_origin
from tests.integration.stream_client import Client
from tests.servers import RunningServer

pytestmark = [pytest.mark.timeout(400)]


def spawn(repository: int, prompt: str, title: str) -> ToolCall:
    return ToolCall("spawn-session", {"repository": str(repository), "prompt": prompt, "title": title})


def tool_outputs(llm: FakeLLM, marker: str) -> str:
    """Everything the tools answered in the conversation that began with ``marker``, as the model saw it."""
    found = [r for r in llm.agent_requests() if marker in json.dumps(r["messages"][:3])]
    return json.dumps([m for m in found[-1]["messages"] if m.get("role") == "tool"]) if found else ""


async def test_a_parent_spawns_two_children_and_reads_their_answers(
    server: RunningServer, llm: FakeLLM, tmp_path: Path
) -> None:
    admin = httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30)
    ids = []
    for name in ("alpha", "beta"):
        origin = make_origin(tmp_path / name, {f"{name}.txt": f"the {name} repository\n"})
        registered = await admin.post("/api/repositories", json={"url": str(origin)})
        assert registered.status_code == 201, registered.text
        ids.append(registered.json()["id"])
    alpha, beta = ids
    allowed = await admin.patch(f"/api/repositories/{alpha}", json={"child_repositories": [beta]})
    assert allowed.status_code == 200 and allowed.json()["child_repositories"] == [beta], allowed.text
    llm.add(
        Turn(when="[parent]", tool_calls=[spawn(alpha, "[child-a] Read alpha", "Alpha"),
                                          spawn(beta, "[child-b] Read beta", "Beta")]),
        Turn(when="[parent]", text="Started two sessions."),
        Turn(when="[child-a]", tool_calls=[spawn(alpha, "[grandchild] deeper", "Deeper")]),
        Turn(when="[child-a]", text="Alpha holds alpha.txt."),
        Turn(when="[child-b]", text="Beta holds beta.txt."),
    )  # fmt: skip
    parent = (await admin.post("/api/sessions", json={"repository_id": alpha})).json()["id"]
    async with Client(server, parent, server.token) as client:
        started = await admin.post(f"/api/sessions/{parent}/prompts", json={"content": "[parent] Split the work"})
        assert started.status_code == 202, started.text
        await client.wait(lambda m: m["type"] == "execution_complete", "the parent's first prompt", 180)
        cards = await client.wait(
            lambda m: m["type"] == "child" and m["data"]["status"] == "done", "a child's card saying done", 180
        )
        assert cards["data"]["repository"]
    children = []
    for _ in range(240):
        children = (await admin.get(f"/api/sessions/{parent}/children")).json()["children"]
        if len(children) == 2 and all(c["status"] == "done" for c in children):
            break
        await asyncio.sleep(0.5)
    children.sort(key=lambda c: c["title"])  # the agent's two calls run at once: either may start first
    assert [(c["title"], c["status"]) for c in children] == [("Alpha", "done"), ("Beta", "done")], children
    a, b = (c["id"] for c in children)
    assert "one level only" in tool_outputs(llm, "[child-a]")  # the child's own spawn was refused

    llm.add(
        Turn(when="[parent]", tool_calls=[ToolCall("session-status", {"id": a}),
                                          ToolCall("session-status", {"id": b})]),
        Turn(when="[parent]", text="Both answered."),
    )  # fmt: skip
    asked = await admin.post(f"/api/sessions/{parent}/prompts", json={"content": "How did they do?"})
    message_id = asked.json()["message_id"]
    async with Client(server, parent, server.token) as client:
        done = await client.wait(
            lambda m: m["type"] == "execution_complete" and m["message_id"] == message_id, "the status prompt", 180
        )
    assert done["data"]["success"] is True
    seen = tool_outputs(llm, "[parent]")
    assert "Alpha holds alpha.txt." in seen and "Beta holds beta.txt." in seen
    assert f"/sessions/{a}" in seen  # with each child's link
    await admin.aclose()
