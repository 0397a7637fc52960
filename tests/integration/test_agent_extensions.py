"""MCP servers and skills, configured through the API, on a real server with local sandboxes, the
real OpenCode and a scripted model: the agent of a session on the configured repository calls the
MCP server's tool, and the server got the secret it was configured with (by reference); a session
on another repository has neither the server nor the skill; the secret appears in no event, log or
file the sandbox's agent config left on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from tests.fakes.llm_server import FakeLLM, ToolCall, Turn
from tests.integration.sandbox_harness import make_origin
from tests.integration.stream_client import Client
from tests.servers import ROOT, RunningServer

pytestmark = [pytest.mark.timeout(300)]
SECRET = "s3cret-mcp-token-value"
SKILL = "When you change the API, update docs/api.md in the same commit."


def tool_names(request: dict) -> set[str]:
    return {t["function"]["name"] for t in request.get("tools") or []}


async def run(http: httpx.AsyncClient, server: RunningServer, repository_id: int, content: str) -> str:
    session = (await http.post("/api/sessions", json={"repository_id": repository_id})).json()["id"]
    async with Client(server, session, server.token) as client:
        message_id = (await http.post(f"/api/sessions/{session}/prompts", json={"content": content})).json()[
            "message_id"
        ]
        done = await client.wait(
            lambda m: m["type"] == "execution_complete" and m["message_id"] == message_id, "the prompt", 180
        )
    assert done["data"]["success"] is True, done
    return session


async def test_a_repositorys_mcp_server_gets_its_secret_and_only_its_sessions_have_it(
    server: RunningServer, llm: FakeLLM, tmp_path: Path
) -> None:
    http = httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30)
    mcp_source = (ROOT / "tests" / "fixtures" / "echo_mcp.py").read_text()
    with_mcp = make_origin(tmp_path / "a", {"tools/echo_mcp.py": mcp_source})
    a = (await http.post("/api/repositories", json={"url": str(with_mcp)})).json()["id"]
    b = (await http.post("/api/repositories", json={"url": str(make_origin(tmp_path / "b"))})).json()["id"]
    assert (await http.put(f"/api/repositories/{a}/secrets/ECHO_KEY", json={"value": SECRET})).status_code == 204
    server_config = {"command": ["python3", "tools/echo_mcp.py"], "environment": {"ECHO_TOKEN": {"secret": "ECHO_KEY"}}}
    for kind, name, config in (("mcp_local", "echo", server_config), ("skill", "api-docs", {"content": SKILL})):
        added = await http.post(
            "/api/agent-extensions", json={"kind": kind, "name": name, "repository_id": a, "config": config}
        )
        assert added.status_code == 201, added.text
    bad = await http.post(
        "/api/agent-extensions",
        json={"kind": "mcp_local", "name": "bad", "repository_id": a, "config": {"command": "rm -rf /"}},
    )
    assert bad.status_code == 422 and "list of 1-20 arguments" in bad.json()["error"]["message"]

    llm.add(Turn(tool_calls=[ToolCall("echo_whoami", {})]), Turn(text="Asked the echo server."))
    on_a = await run(http, server, a, "Who are you, echo?")
    digest = hashlib.sha256(SECRET.encode()).hexdigest()[:16]
    events = (await http.get(f"/api/sessions/{on_a}/events", params={"after": 0, "limit": 500})).json()["events"]
    [call] = [e["data"] for e in events if e["type"] == "tool_call"]
    assert (call["tool"], call["status"]) == ("echo_whoami", "completed")
    assert f"token-digest={digest}" in call["output"]  # the server got the secret, by reference
    first = next(r for r in llm.agent_requests() if "Who are you, echo?" in json.dumps(r["messages"]))
    assert "echo_whoami" in tool_names(first)
    assert SKILL in json.dumps(first["messages"][0])  # the skill is in the agent's instructions
    snapshot = (await http.get(f"/api/sessions/{on_a}")).json()
    assert snapshot["agent"] == {"mcp": ["echo"], "skills": ["api-docs"]}

    llm.add(Turn(text="Nothing to ask here."))
    on_b = await run(http, server, b, "Anything on b?")
    second = next(r for r in llm.agent_requests() if "Anything on b?" in json.dumps(r["messages"]))
    assert "echo_whoami" not in tool_names(second) and SKILL not in json.dumps(second["messages"][0])
    assert (await http.get(f"/api/sessions/{on_b}")).json()["agent"] == {"mcp": [], "skills": []}

    # the secret: not in any event, the server's log, the sandboxes' logs, or their agent config files
    written = [json.dumps(events), server.log_path.read_text(errors="replace")]
    for sandbox in (server.data_dir / "sandboxes").iterdir():
        for path in sandbox.rglob("*"):
            if path.is_file() and "workspace" not in path.parts and path.stat().st_size < 5_000_000:
                written.append(path.read_text(errors="replace"))
    assert not [text for text in written if SECRET in text]
    await http.aclose()
