"""Plan, then build, on a real server with a local sandbox, the real OpenCode and a scripted model:
in a plan prompt the model tries to write a file and to run a writing shell command, and the
sandbox refuses both (the repository is unchanged); the build prompt made from the plan then runs
with the plan in it, and its write goes through."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fakes.llm_server import FakeLLM, ToolCall, Turn
from tests.integration.sandbox_harness import git, make_origin
from tests.integration.stream_client import Client, bash
from tests.servers import RunningServer

pytestmark = [pytest.mark.timeout(300)]
PLAN = "Plan: 1. add notes.txt saying hello. 2. commit it."


async def test_a_plan_prompt_changes_nothing_and_its_build_does(
    server: RunningServer, llm: FakeLLM, tmp_path: Path
) -> None:
    http = httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30)
    repo = await http.post("/api/repositories", json={"url": str(make_origin(tmp_path))})
    session = (await http.post("/api/sessions", json={"repository_id": repo.json()["id"]})).json()["id"]
    llm.add(
        Turn(tool_calls=[ToolCall("write", {"filePath": "plan.txt", "content": "sneaky"})]),
        Turn(tool_calls=[bash("bash -c 'echo x > f.txt'")]),
        Turn(tool_calls=[bash("ls && git log --oneline")]),  # reading is what planning is for
        Turn(text=PLAN),
        Turn(tool_calls=[bash("echo hello > notes.txt && git add notes.txt && git commit -qm 'Add notes'")]),
        Turn(text="Built it."),
    )
    async with Client(server, session, server.token) as client:
        planned = await http.post(f"/api/sessions/{session}/prompts", json={"content": "Add notes", "mode": "plan"})
        assert planned.status_code == 202, planned.text
        plan_id = planned.json()["message_id"]
        done = await client.wait(
            lambda m: m["type"] == "execution_complete" and m["message_id"] == plan_id, "the plan", 180
        )
        assert done["data"]["success"] is True
        workspace = server.data_dir / "sandboxes" / session / "workspace"
        assert not (workspace / "plan.txt").exists() and not (workspace / "f.txt").exists()
        assert git("status", "--porcelain", cwd=workspace) == ""  # the repository is unchanged
        calls = (await http.get(f"/api/sessions/{session}/events", params={"after": 0, "limit": 500})).json()
        tools = [e["data"] for e in calls["events"] if e["type"] == "tool_call"]
        assert [(t["tool"], t["status"]) for t in tools] == [
            ("write", "error"),
            ("bash", "error"),
            ("bash", "completed"),
        ]
        assert all("Plan mode" in t["output"] for t in tools[:2])
        assert "README.md" in tools[2]["output"]  # a read ran
        prompt = next(e for e in calls["events"] if e["type"] == "prompt" and e["message_id"] == plan_id)
        assert prompt["data"]["mode"] == "plan"

        # "Build this": a build prompt that carries the plan
        build = await http.post(f"/api/sessions/{session}/prompts", json={"content": f"Build this plan:\n\n{PLAN}"})
        build_id = build.json()["message_id"]
        built = await client.wait(
            lambda m: m["type"] == "execution_complete" and m["message_id"] == build_id, "the build", 180
        )
        assert built["data"]["success"] is True
    assert (workspace / "notes.txt").read_text() == "hello\n"  # the build may write
    asked = llm.agent_requests()[-1]["messages"]
    assert any(PLAN in str(m.get("content")) for m in asked if m.get("role") == "user")
    await http.aclose()
