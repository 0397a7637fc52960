"""``/api/github/webhook``: signatures, replays, PR artifacts updated live, stale images on push."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session as DBSession
from sqlmodel import select

from inspect_app import services
from inspect_app.api.app import build_api
from inspect_app.control.data import sessions
from inspect_app.control.events import session_channel
from inspect_app.db import session_scope, upgrade
from inspect_app.models import Artifact, Image, Repository, User
from inspect_app.settings import Settings

SECRET = "webhook-secret"
PR_URL = "https://github.com/acme/widgets/pull/7"


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", github_webhook_secret=SECRET)  # type: ignore[call-arg]
    upgrade(settings.resolved_database_url)
    built = services.build_services(settings)
    services.install(built)
    await built.plane.start()
    with session_scope(built.engine) as db:
        user, repo = (
            User(name="Ada"),
            Repository(
                url="https://github.com/acme/widgets",
                name="acme/widgets",
                kind="github",
                github_owner="acme",
                github_name="widgets",
            ),
        )
        db.add_all([user, repo])
        db.flush()
        ids = (user.id, repo.id)
        db.add(Image(repository_id=repo.id, branch="main", provider="local", status="ready"))  # type: ignore[arg-type]
    session = sessions.create(built.engine, repository_id=ids[1], creator_id=ids[0])
    with session_scope(built.engine) as db:
        db.add(Artifact(session_id=session.id, type="pr", url=PR_URL, state="open", meta={"number": 7}))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_api()), base_url="http://testserver")
    yield client, session.id
    await client.aclose()
    await built.plane.close()
    services.install(None)


async def deliver(client: httpx.AsyncClient, event: str, payload: dict, delivery: str, signature: str | None = None):
    body = json.dumps(payload).encode()
    headers = {
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": signature or signed(body),
        "content-type": "application/json",
    }
    return await client.post("/api/github/webhook", content=body, headers=headers)


def pr_state() -> str:
    with DBSession(services.current().engine) as db:
        return db.exec(select(Artifact.state)).one()


MERGED = {"action": "closed", "pull_request": {"html_url": PR_URL, "merged": True, "number": 7}}


async def test_a_merged_pr_updates_the_artifact_live(app: tuple[httpx.AsyncClient, str]) -> None:
    client, session_id = app
    watcher = await services.current().plane.hub.subscribe(session_channel(session_id))
    response = await deliver(client, "pull_request", MERGED, "d-1")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert pr_state() == "merged"
    live = json.loads(await watcher.get(5))
    assert live["type"] == "artifact" and live["data"]["state"] == "merged" and live["data"]["url"] == PR_URL


async def test_bad_signatures_and_replays_change_nothing(app: tuple[httpx.AsyncClient, str]) -> None:
    client, session_id = app
    forged = await deliver(client, "pull_request", MERGED, "d-2", signature="sha256=" + "0" * 64)
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "unauthorized"
    unsigned = await deliver(client, "pull_request", MERGED, "d-2", signature=signed(b"other body"))
    assert unsigned.status_code == 401
    assert pr_state() == "open"
    reopened = {"action": "reopened", "pull_request": {"html_url": PR_URL, "number": 7}}
    assert (await deliver(client, "pull_request", MERGED, "d-3")).json() == {"status": "ok"}
    replay_then_reopen = await deliver(client, "pull_request", reopened, "d-3")  # same delivery id
    assert replay_then_reopen.json() == {"status": "duplicate"}
    assert pr_state() == "merged"
    events, _ = services.current().plane.events.page(session_id, after=0, limit=100)
    assert len([e for e in events if e.type == "artifact"]) == 1


async def test_bad_payloads_get_clear_errors(app: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = app
    response = await deliver(client, "pull_request", {"action": "closed"}, "d-4")
    assert response.status_code == 422 and "html_url" in response.json()["error"]["message"]


async def test_a_push_marks_the_branch_image_stale(app: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = app
    push = {"ref": "refs/heads/main", "repository": {"full_name": "acme/widgets"}}
    assert (await deliver(client, "push", push, "d-5")).status_code == 200
    with DBSession(services.current().engine) as db:
        assert db.exec(select(Image.status)).one() == "stale"
