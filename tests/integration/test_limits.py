"""API limits, as an attacker would try them: oversized bodies and contexts, 64-bit cursors, NUL bytes,
and registration errors that would probe ports (the data directory's modes: test_data_dir)."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session as DBSession
from sqlmodel import func, select

from inspect_app import services
from inspect_app.control import tokens
from inspect_app.control.data import prompts, repositories, sessions, users
from inspect_app.errors import InvalidInput
from inspect_app.models import Event, Message, Repository, Sandbox
from inspect_app.ui.timeline import item_for
from tests.integration.local_api import LocalInstance, local_instance
from tests.integration.sandbox_harness import make_origin

ELEMENT = {"element": {"selector": "main > button.buy", "html": "<button>Buy</button>", "react": {"components": []}}}


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[LocalInstance]:
    async with local_instance(tmp_path / "data") as instance:
        yield instance


@pytest.fixture
def session_id(running: LocalInstance) -> str:
    """A session whose sandbox counts as starting, so a prompt is queued without spawning anything."""
    engine = running.engine
    with DBSession(engine) as db:
        repo = Repository(url="/srv/demo.git", name="demo")
        db.add(repo)
        db.commit()
        repo_id = repo.id or 0
    local = users.local_user(engine)
    assert local is not None
    sid = sessions.create(engine, repository_id=repo_id, creator_id=local.id or 0).id
    with DBSession(engine) as db:
        db.add(Sandbox(session_id=sid, provider="local", token_hash=tokens.hash_token(tokens.mint("sbx"))))
        db.commit()
    return sid


def stored(engine: sa.Engine, session_id: str) -> tuple[int, int]:
    """(messages, events) stored for the session."""
    with DBSession(engine) as db:
        messages = db.exec(select(func.count()).where(Message.session_id == session_id)).one()
        events = db.exec(select(func.count()).where(Event.session_id == session_id)).one()
    return int(messages), int(events)


async def test_an_over_limit_context_is_refused_and_nothing_is_stored(running: LocalInstance, session_id: str) -> None:
    url = f"/api/sessions/{session_id}/prompts"
    big = {"element": {"html": "x" * (64 * 1024)}}  # 64 KiB of text, and the JSON around it
    refused = await running.client.post(url, json={"content": "hi", "context": big}, headers=running.admin)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "context_too_large"
    assert "the limit is 65536" in refused.json()["error"]["message"]
    huge = {"element": {"html": "x" * (2 * 1024 * 1024)}}  # past the request body limit itself
    too_large = await running.client.post(url, json={"content": "hi", "context": huge}, headers=running.admin)
    assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "too_large"
    assert stored(running.engine, session_id) == (0, 0)


async def test_a_context_is_stored_once_and_its_readers_still_show_it(running: LocalInstance, session_id: str) -> None:
    plane = services.current().plane
    await plane.events.start()
    try:
        accepted = await running.client.post(
            f"/api/sessions/{session_id}/prompts",
            json={"content": "Fix this", "context": ELEMENT},
            headers=running.admin,
        )
        assert accepted.status_code == 202, accepted.text
        await plane.events.close()
    finally:
        await plane.close()
    message_id = accepted.json()["message_id"]
    with DBSession(running.engine) as db:
        assert db.get(Message, message_id).context == ELEMENT  # type: ignore[union-attr]
        [event] = db.exec(select(Event).where(Event.session_id == session_id, Event.type == "prompt")).all()
    assert "context" not in event.data and event.data["has_context"] is True
    assert "main > button.buy" not in json.dumps(event.data)  # not a second copy
    detail = await running.client.get(f"/api/sessions/{session_id}/prompts/{message_id}", headers=running.admin)
    assert detail.status_code == 200 and detail.json()["context"] == ELEMENT  # API clients
    page = (await running.client.get(f"/api/sessions/{session_id}/events", headers=running.admin)).json()
    [shown] = prompts.attach_contexts(running.engine, page["events"])  # what the session page does
    item = item_for(shown)
    assert item is not None and item.detail == "main > button.buy"


async def test_a_streamed_body_over_the_limit_is_cut_off(running: LocalInstance, session_id: str) -> None:
    chunk = b" " * 65536

    async def endless() -> AsyncIterator[bytes]:
        yield b'{"content": "hi", "context": {"pad": "'
        for _ in range(64):  # 4 MiB without a Content-Length
            yield chunk
        yield b'"}}'

    url = f"/api/sessions/{session_id}/prompts"
    headers = {**running.admin, "content-type": "application/json"}
    streamed = await running.client.post(url, content=endless(), headers=headers)
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "too_large"
    declared = await running.client.post(url, content=b"{" + b" " * (1024 * 1024) + b"}", headers=headers)
    assert declared.status_code == 413
    # GitHub's webhook keeps its own, larger limit (GitHub sends up to 25 MB): refused for its signature
    webhook = await running.client.post("/api/github/webhook", content=b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert webhook.status_code not in (413, 500)
    assert stored(running.engine, session_id) == (0, 0)


async def test_cursors_and_ids_beyond_64_bits_are_refused(running: LocalInstance, session_id: str) -> None:
    client, admin = running.client, running.admin
    for path, params in [
        (f"/api/sessions/{session_id}/events", {"after": 2**64}),
        (f"/api/sessions/{session_id}/events", {"after": 2**63}),
        ("/api/sessions", {"offset": 2**64}),
        (f"/api/repositories/{2**64}/image", {}),
    ]:
        response = await client.get(path, params=params, headers=admin)
        assert response.status_code == 422, (path, params, response.text)
    refused = await client.post("/api/sessions", json={"repository_id": 2**64}, headers=admin)
    assert refused.status_code == 422, refused.text
    last = await client.get(f"/api/sessions/{session_id}/events", params={"after": 2**63 - 1}, headers=admin)
    assert last.status_code == 200 and last.json()["events"] == []


async def test_nul_bytes_are_a_4xx(running: LocalInstance, session_id: str, tmp_path: Path) -> None:
    client, admin = running.client, running.admin
    origin = make_origin(tmp_path)
    for body in ({"url": f"{origin}\x00"}, {"url": "https://example.com/a\x00.git"}):
        response = await client.post("/api/repositories", json=body, headers=admin)
        assert response.status_code == 422, response.text
        assert "NUL" in response.json()["error"]["message"]
    prompt = f"/api/sessions/{session_id}/prompts"
    for body in ({"content": "hi\x00"}, {"content": "hi", "context": {"a\x00": 1}}):
        assert (await client.post(prompt, json=body, headers=admin)).status_code == 422
    for path in (f"/api/sessions/{session_id}%00", "/api/sessions?status=%00", "/api/secrets/NPM%00TOKEN"):
        response = await client.get(path, headers=admin)
        assert response.status_code == 422, (path, response.text)
    local = users.local_user(running.engine)
    assert local is not None
    with pytest.raises(InvalidInput):  # what the Settings page calls
        repositories.register(running.engine, f"{origin}\x00", actor_id=local.id or 0)
    with pytest.raises(InvalidInput):  # what the session page calls
        sessions.rename(running.engine, session_id, "a\x00b")
    assert stored(running.engine, session_id) == (0, 0)


def _git_error(url: str) -> str:
    """What git itself says about ``url`` (to make sure none of it reaches the caller)."""
    env = {"PATH": "/usr/bin:/bin", "GIT_TERMINAL_PROMPT": "0"}
    found = subprocess.run(
        ["git", "ls-remote", "--", url], capture_output=True, text=True, timeout=30, check=False, env=env
    )
    return found.stderr.strip()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once it is closed


async def test_a_registration_error_does_not_echo_git(running: LocalInstance, caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/private.git"
    git_says = _git_error(url)
    assert "refused" in git_says.lower() or "connect" in git_says.lower(), git_says
    with caplog.at_level(logging.INFO, logger="inspect_app.scm.local_git"):
        response = await running.client.post("/api/repositories", json={"url": url}, headers=running.admin)
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert (
        message == f"{url} cannot be read as a git repository: check the path or URL, and that the server can reach it"
    )
    for line in git_says.splitlines():
        assert line not in response.text
    assert "refused" not in response.text.lower() and "fatal" not in response.text.lower()
    assert git_says.splitlines()[-1] in caplog.text  # the operator still sees why


async def test_a_local_origin_holding_or_inside_our_own_files_is_refused(running: LocalInstance) -> None:
    # a local origin is bound into its sandboxes: one holding the data directory would show it the keys
    data_dir = running.settings.data_dir
    project = running.settings.protected_paths[-1]
    for url in (str(data_dir.parent), f"file://{data_dir}", str(project), str(project / "sandbox")):
        response = await running.client.post("/api/repositories", json={"url": url}, headers=running.admin)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["code"] == "protected_path"
    assert (await running.client.get("/api/repositories", headers=running.admin)).json() == []


async def test_secret_names_that_hook_loaders_or_interpreters_are_refused(running: LocalInstance) -> None:
    for name in ("LD_PRELOAD", "BASH_ENV", "NODE_OPTIONS", "PYTHONSTARTUP", "GIT_SSH_COMMAND"):
        response = await running.client.put(f"/api/secrets/{name}", json={"value": "/tmp/x.so"}, headers=running.admin)
        assert response.status_code == 422, (name, response.text)
        assert name in response.json()["error"]["message"]  # with the reason
    assert (await running.client.get("/api/secrets", headers=running.admin)).json() == {"names": []}
    ok = await running.client.put("/api/secrets/DEPLOY_KEY", json={"value": "x"}, headers=running.admin)
    assert ok.status_code == 204, ok.text
