"""Child sessions with the real control plane and in-loop sandboxes: a session's agent starts
sessions through its tool token; the rules (one level, ten at most, allowed repositories, never
from a fork) hold at the tool's HTTP edge; the parent's timeline keeps one live card per child;
stopping or archiving the parent stops its children."""

from __future__ import annotations

import httpx
import pytest

from inspect_app.control.children import MAX_CHILDREN
from inspect_app.control.data import repositories, roles, sessions, users
from inspect_app.db import session_scope
from inspect_app.models import Repository, Session
from tests.integration.local_api import asgi
from tests.integration.test_plane_core import Core

pytestmark = pytest.mark.timeout(60)


def repository(core: Core, name: str) -> int:
    with session_scope(core.services.engine) as db:
        repo = Repository(url=f"/srv/{name}.git", name=name)
        db.add(repo)
        db.flush()
        return repo.id or 0


async def tool(core: Core, session_id: str, method: str, path: str, body: dict | None = None) -> httpx.Response:
    """A call of the session's agent tools, with its sandbox's tool token (as the JS tools make it)."""
    token = next(s.spec.tool_token for s in core.provider.sandboxes.values() if s.spec.session_id == session_id)
    return await asgi(method, f"/api/sandbox{path}", token=token, json=body)


def cards(core: Core, session_id: str) -> dict[str, dict]:
    """The parent's timeline: one ``child`` event per child (its latest version)."""
    events = core.services.plane.events.page(session_id, after=0, limit=500)[0]
    return {e.data["child_id"]: e.data for e in events if e.type == "child"}


async def sandbox_up(core: Core, session_id: str) -> None:
    await core.until(
        lambda: any(s.spec.session_id == session_id for s in core.provider.sandboxes.values()), "its sandbox", 20
    )


async def test_an_agent_starts_children_where_allowed_and_follows_them(core: Core) -> None:
    engine = core.services.engine
    demo = sessions.get(engine, core.session_id).repository_id
    beta = repository(core, "beta")
    repository(core, "gamma")  # registered, and not allowed
    roles.set_admin(engine, admin=True, email="ada@example.com")
    repositories.set_child_repositories(engine, demo, [beta], actor_id=core.user.id or 0)
    await core.prompt("Split the work")  # the parent runs: its sandbox holds the tool token
    await sandbox_up(core, core.session_id)

    own = await tool(core, core.session_id, "POST", "/sessions", {"repository": "demo", "prompt": "Look at demo"})
    assert own.status_code == 201, own.text
    other = await tool(core, core.session_id, "POST", "/sessions", {"repository": "beta", "prompt": "Look at beta"})
    assert other.status_code == 201, other.text
    refused = await tool(core, core.session_id, "POST", "/sessions", {"repository": "gamma", "prompt": "No"})
    assert refused.status_code == 403
    assert "demo does not allow its sessions to start sessions on that repository" in refused.json()["error"]["message"]

    a, b = own.json()["id"], other.json()["id"]
    with session_scope(engine) as db:
        child = db.get(Session, b)
        assert child is not None and child.parent_id == core.session_id and child.creator_id == core.user.id
    done = await core.until(
        lambda: (
            all(c["status"] == "done" for c in cards(core, core.session_id).values())
            and len(cards(core, core.session_id)) == 2
        ),
        "both children done, on the parent's cards",
    )
    assert done
    assert {c["repository"] for c in cards(core, core.session_id).values()} == {"demo", "beta"}
    status = await tool(core, core.session_id, "GET", f"/sessions/{b}")
    assert (status.json()["status"], status.json()["answer"]) == ("done", "Done as asked.")
    # a screenshot the child kept is its evidence, not its pull request
    child_token = next(s.spec.tool_token for s in core.provider.sandboxes.values() if s.spec.session_id == b)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    kept = await asgi("POST", "/api/sandbox/screenshots?caption=After", token=child_token, content=png)
    assert kept.status_code == 201, kept.text
    status = await tool(core, core.session_id, "GET", f"/sessions/{b}")
    assert status.json()["pr_url"] == ""

    # a child cannot spawn, and nobody else's session can be followed
    grandchild = await tool(core, a, "POST", "/sessions", {"repository": "demo", "prompt": "Deeper"})
    assert grandchild.status_code == 403 and "one level only" in grandchild.json()["error"]["message"]
    stranger = await tool(core, a, "GET", f"/sessions/{b}")
    assert stranger.status_code == 404

    # at most ten per parent
    for n in range(MAX_CHILDREN - 2):
        assert (
            await tool(core, core.session_id, "POST", "/sessions", {"repository": "demo", "prompt": f"n{n}"})
        ).is_success
    eleventh = await tool(core, core.session_id, "POST", "/sessions", {"repository": "demo", "prompt": "one more"})
    assert eleventh.status_code == 403
    assert eleventh.json()["error"]["message"] == "this session has started 10 sessions already (at most 10)"
    ada = users.issue_api_token(core.services.engine, core.user.id or 0)
    listed = await asgi("GET", f"/api/sessions/{core.session_id}/children", token=ada)
    assert [c["id"] for c in listed.json()["children"]][:2] == [a, b]


async def test_stopping_or_archiving_the_parent_stops_its_children(core: Core) -> None:
    await core.prompt("Fan out")
    await sandbox_up(core, core.session_id)
    core.provider.hold.clear()  # from now on every agent keeps working until stopped
    first = await tool(core, core.session_id, "POST", "/sessions", {"repository": "demo", "prompt": "Slow one"})
    second = await tool(core, core.session_id, "POST", "/sessions", {"repository": "demo", "prompt": "Slow two"})
    a, b = first.json()["id"], second.json()["id"]
    await core.until(lambda: cards(core, core.session_id)[a]["status"] == "working", "working")
    user = await core.services.plane.person(core.user.id or 0)
    await core.services.children.stop_parent(core.session_id, user)
    stopped = await core.until(
        lambda: {cards(core, core.session_id)[c]["status"] for c in (a, b)} <= {"failed", "stopped"},
        "both children stopped",
    )
    assert stopped
    # a new prompt in a child, then the parent is archived: that stops it too
    await tool(core, core.session_id, "POST", f"/sessions/{a}/prompts", {"prompt": "Again"})
    await core.until(lambda: cards(core, core.session_id)[a]["status"] == "working", "working again")
    await core.services.children.set_archived(core.session_id, True, user)
    await core.until(lambda: cards(core, core.session_id)[a]["status"] in ("failed", "stopped"), "stopped again")


async def test_a_session_on_a_forks_code_starts_no_children(core: Core) -> None:
    engine = core.services.engine
    demo = sessions.get(engine, core.session_id).repository_id
    fork = sessions.create(engine, repository_id=demo, creator_id=core.user.id or 0, fork_pull=7)
    await core.services.plane.submit_prompt(session_id=fork.id, user=core.user, content="Hi")
    await sandbox_up(core, fork.id)
    refused = await tool(core, fork.id, "POST", "/sessions", {"repository": "demo", "prompt": "Get the secrets"})
    assert refused.status_code == 403 and "fork's code cannot start sessions" in refused.json()["error"]["message"]
