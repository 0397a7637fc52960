"""The prompt path, from the API to the sandbox's wire: bad input is refused at the edge with the
limit it broke, and nothing a client sends can wedge a session's queue."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from inspect_app import services
from inspect_app.control.data import sandboxes, sessions
from inspect_app.control.links import SandboxLink
from inspect_app.control.sandbox_link import SandboxConnection
from inspect_app.db import session_scope
from inspect_app.models import Message, MessageStatus, Repository
from sandbox.protocol import ExecutionComplete
from tests.integration.local_api import LocalInstance, bearer, local_instance


@dataclass
class Sandbox:
    """A connected sandbox as the control plane sees it: what it was sent, and a way to answer."""

    connection: SandboxConnection | None = None
    sent: list[dict] = field(default_factory=list)

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def prompts(self) -> list[dict]:
        return [m for m in self.sent if m["type"] == "prompt"]

    async def finish_all(self) -> None:
        """Complete every prompt it was sent, and those sent as the queue moves on (as OpenCode would)."""
        assert self.connection is not None
        finished: set[str] = set()
        while todo := [p["message_id"] for p in self.prompts() if p["message_id"] not in finished]:
            for message_id in todo:
                await self.connection.handle(ExecutionComplete(message_id=message_id, success=True))
                finished.add(message_id)


@dataclass
class PromptPath:
    instance: LocalInstance
    session_id: str
    sandbox: Sandbox

    async def send(self, body: dict[str, Any]) -> Any:
        url = f"/api/sessions/{self.session_id}/prompts"
        return await self.instance.client.post(url, json=body, headers=self.instance.admin)

    async def next_prompt_runs(self) -> None:
        """A plain prompt sent now reaches the sandbox: the queue is not wedged."""
        await self.sandbox.finish_all()
        response = await self.send({"content": "And now this"})
        assert response.status_code == 202, response.text
        message_id = response.json()["message_id"]
        assert response.json()["status"] == MessageStatus.PROCESSING, (response.json(), self.statuses())
        assert message_id in [p["message_id"] for p in self.sandbox.prompts()]

    def statuses(self) -> list[tuple[str, str, str]]:
        with session_scope(self.instance.engine) as db:
            rows = db.exec(select(Message).where(Message.session_id == self.session_id)).all()
            return [(m.id, m.status, m.content[:20]) for m in rows if m.status != MessageStatus.COMPLETED]


@contextlib.asynccontextmanager
async def prompt_path(data_dir: Path, **settings: Any) -> AsyncIterator[PromptPath]:
    async with local_instance(data_dir, **settings) as instance:
        plane = services.current().plane
        await plane.events.start()
        try:
            with session_scope(instance.engine) as db:
                repo = Repository(url="/srv/demo.git", name="demo")
                db.add(repo)
                db.flush()
                repo_id = repo.id or 0
            creator = (await instance.client.get("/api/me", headers=instance.admin)).json()["id"]
            session_id = sessions.create(instance.engine, repository_id=repo_id, creator_id=creator).id
            replica = instance.settings.resolved_replica_id
            created = sandboxes.create(
                instance.engine, session_id=session_id, provider="local", boot_mode="fresh", replica_id=replica
            )
            assert created is not None
            row = created[0]
            sandbox = Sandbox()
            link = SandboxLink(session_id=session_id, sandbox_id=row.id, send_text=sandbox.send_text)
            link.ready = True
            sandbox.connection = SandboxConnection(plane, link)
            await plane.links.attach(link)
            yield PromptPath(instance, session_id, sandbox)
        finally:
            await plane.events.close()


async def test_a_prompt_too_long_with_its_context_is_refused_and_the_next_one_runs(tmp_path: Path) -> None:
    async with prompt_path(tmp_path / "data") as path:
        refused = await path.send({"content": "x" * 63_000, "context": {"html": "<p>" + "y" * 30_000 + "</p>"}})
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "too_long" and "64000" in error["message"]
        assert path.sandbox.prompts() == []  # nothing was queued, nothing half-delivered
        await path.next_prompt_runs()

        # the change feed over the API: follow the cursor each answer gives
        url, admin = f"/api/sessions/{path.session_id}/events", path.instance.admin
        # the prompt's start is recorded in the background, after its delivery: wait for the last write
        for _ in range(200):
            feed = (await path.instance.client.get(url, params={"cursor": 0}, headers=admin)).json()
            if any(e["type"] == "prompt_started" for e in feed["events"]):
                break
            await asyncio.sleep(0.02)
        assert feed["events"] and feed["more"] is False
        assert feed["cursor"] == max(e["rev"] for e in feed["events"])
        again = (await path.instance.client.get(url, params={"cursor": feed["cursor"]}, headers=admin)).json()
        assert again["events"] == [] and again["cursor"] == feed["cursor"]


# What clients send: sizes around every limit, odd characters, contexts of every JSON shape.
TEXT = st.one_of(
    st.text(max_size=200),
    st.integers(0, 70_000).map(lambda n: "p" * n),
    st.sampled_from(["", " ", "\x00", "\u202e", "\ud7ff" * 10, "a\x00b"]),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=50) | st.integers(0, 40_000).map(lambda n: "c" * n),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)
BODIES = st.fixed_dictionaries(
    {"content": TEXT},
    optional={
        "context": st.one_of(st.dictionaries(st.text(max_size=10), JSON, max_size=4), JSON),
        "client_request_id": st.one_of(st.none(), st.text(max_size=120)),
        "extra": JSON,
    },
)


@pytest.fixture
def running_path(tmp_path: Path) -> Iterator[tuple[asyncio.Runner, PromptPath]]:
    """One prompt path for every generated example (hypothesis runs them in one test)."""
    with asyncio.Runner() as runner:
        stack = contextlib.AsyncExitStack()
        path = runner.run(stack.enter_async_context(prompt_path(tmp_path / "data")))
        try:
            yield runner, path
        finally:
            runner.run(stack.aclose())


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=BODIES)
def test_no_body_wedges_the_queue(running_path: tuple[asyncio.Runner, PromptPath], body: dict[str, Any]) -> None:
    runner, path = running_path

    async def example() -> None:
        response = await path.send(body)
        assert response.status_code in (202, 413, 422), response.text  # refused with a reason, never a 500
        if response.status_code != 202:
            assert response.json()["error"]["message"]
        await path.next_prompt_runs()

    runner.run(example())


async def test_metrics_are_off_without_a_token(tmp_path: Path) -> None:
    async with local_instance(tmp_path / "data") as instance:
        off = await instance.client.get("/metrics", headers=instance.admin)  # a user's token is not one
        assert off.status_code == 404 and "INSPECT_METRICS_TOKEN" in off.text


async def test_metrics_report_this_replica_to_a_scraper_with_the_token(tmp_path: Path) -> None:
    async with prompt_path(tmp_path / "data", metrics_token="scrape-me", replica_id="r1") as path:
        client = path.instance.client
        for wrong in ({}, bearer("scrape-me-not"), path.instance.admin):
            refused = await client.get("/metrics", headers=wrong)
            assert refused.status_code == 401 and "metrics token" in refused.text
        accepted = await path.send({"content": "Count me"})
        assert accepted.status_code == 202, accepted.text
        await services.current().plane.events.written()
        scraped = await client.get("/metrics", headers=bearer("scrape-me"))
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted({"replica": "r1", **labels}.items())))]

    assert value("inspect_prompt_delivery_seconds_count") == 1  # sent to the sandbox on the request's path
    assert value("inspect_prompts", status="processing") == 1 and value("inspect_prompts", status="pending") == 0
    assert value("inspect_sessions", status="running") == 1
    assert value("inspect_sandboxes", status="spawning") == 1  # the one this replica serves
    assert value("inspect_events_written_total") >= 2  # the prompt and its start
    assert value("inspect_events_published_total") == value("inspect_events_written_total")
    assert value("inspect_websocket_clients") == 0
    assert ("inspect_event_loop_lag_seconds", (("quantile", "0.99"), ("replica", "r1"))) in samples
