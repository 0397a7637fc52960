"""MCP servers and skills with the real control plane and in-loop sandboxes: only an admin adds one
(through the API, nothing changes otherwise), and a server whose secret is missing is left out of
the sandbox and said so in the session."""

from __future__ import annotations

import json

from inspect_app.control.data import agent_extensions, roles, sessions, users
from tests.integration.local_api import asgi
from tests.integration.test_plane_core import Core

SERVER = {"command": ["db-mcp"], "environment": {"DB_URL": {"secret": "NOT_SET"}}}


async def test_only_an_admin_adds_an_mcp_server(core: Core) -> None:
    token = users.issue_api_token(core.services.engine, core.user.id or 0)
    body = {"kind": "mcp_local", "name": "db", "repository_id": None, "config": SERVER}
    refused = await asgi("POST", "/api/agent-extensions", token=token, json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_only"
    assert agent_extensions.listing(core.services.engine) == []


async def test_a_server_whose_secret_is_missing_is_left_out_and_said_so(core: Core) -> None:
    engine = core.services.engine
    roles.set_admin(engine, admin=True, email="ada@example.com")
    repository = sessions.get(engine, core.session_id).repository_id
    agent_extensions.add(
        engine, kind="mcp_local", name="db", config=SERVER, repository_id=repository, actor_id=core.user.id or 0
    )
    await core.prompt("Use the database")
    [sandbox] = await core.until(lambda: list(core.provider.sandboxes.values()), "the sandbox")
    assert sandbox.spec.mcp == "" and "NOT_SET" not in json.dumps(dict(sandbox.spec.secrets))
    warnings = await core.until(
        lambda: [e.data["message"] for e in core.events() if e.type == "warning"], "the session's warning"
    )
    assert warnings == ["MCP server db: no secret NOT_SET"]
