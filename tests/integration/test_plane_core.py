"""The control plane's core in-process: the real plane, lifecycle, event store and in-memory hub on
SQLite, with sandboxes that live in the test's event loop (``tests/fakes/provider.py``). Seconds for
what the end-to-end suites take minutes to show: spawn → ready → prompt → one end; a sandbox lost
mid-prompt; the breaker counting only failed starts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from inspect_app.control.data import prompts, sessions
from inspect_app.db import session_scope, upgrade
from inspect_app.models import Repository, User
from inspect_app.services import Services, build_services
from inspect_app.settings import Settings
from tests.fakes.provider import FakeProvider

pytestmark = pytest.mark.timeout(60)


@dataclass
class Core:
    services: Services
    provider: FakeProvider
    session_id: str
    user: User

    async def prompt(self, content: str) -> str:
        """As an edge prompts: as the person as they are now (an API request reads its user each time)."""
        user = await self.services.plane.person(self.user.id or 0)
        queued = await self.services.plane.submit_prompt(session_id=self.session_id, user=user, content=content)
        return queued.message.id

    def events(self) -> list[Any]:
        found, after = [], 0
        while True:
            page, following = self.services.plane.events.page(self.session_id, after=after, limit=500)
            found += page
            if following is None:
                return found
            after = following

    def ends(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for event in self.events():
            if event.type == "execution_complete":
                found.setdefault(event.message_id or "", []).append(event.data)
        return found

    async def until(self, check: Callable[[], Any], what: str, timeout: float = 10) -> Any:
        """Poll ``check`` while the plane works (the store writes what is queued within milliseconds)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            await asyncio.sleep(0.02)
            if found := check():
                return found
            if asyncio.get_running_loop().time() > deadline:
                seen = [(e.type, e.message_id, e.data.get("status") or e.data.get("reason")) for e in self.events()]
                raise TimeoutError(f"timed out waiting for {what}; events: {seen[-12:]}; {self.provider.errors}")
            await asyncio.sleep(0.01)


def new_session(engine: sa.Engine) -> tuple[str, User]:
    """A person, a repository and a session of theirs on it."""
    with session_scope(engine) as db:
        ada, repo = User(name="Ada", email="ada@example.com"), Repository(url="/srv/demo.git", name="demo")
        db.add_all([ada, repo])
        db.flush()
        db.expunge(ada)
        repo_id = repo.id or 0
    return sessions.create(engine, repository_id=repo_id, creator_id=ada.id or 0).id, ada


@contextlib.asynccontextmanager
async def running_core(settings: Settings) -> AsyncIterator[Core]:
    """The real services on ``settings``' database (migrated here) with in-loop sandboxes, a person,
    a repository and a session of theirs; the plane running until the block ends."""
    upgrade(settings.resolved_database_url)
    provider = FakeProvider()
    services = build_services(settings, provider=provider)
    provider.plane = services.plane
    session_id, ada = new_session(services.engine)
    await services.plane.start()
    try:
        yield Core(services, provider, session_id, ada)
        assert provider.errors == []  # nothing the plane did for a sandbox raised
    finally:
        await services.plane.close()
        services.engine.dispose()


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    async with running_core(Settings(_env_file=None, data_dir=tmp_path / "data")) as running:  # type: ignore[call-arg]
        yield running


async def test_a_first_prompt_spawns_a_sandbox_runs_and_ends_once(core: Core) -> None:
    first = await core.prompt("Do the thing")
    await core.until(lambda: first in core.ends(), "the prompt to end")
    assert core.ends()[first] == [{"success": True, "author": {"id": core.user.id, "name": "Ada"}}]
    texts = [e.data["text"] for e in core.events() if e.type == "text"]
    assert texts == ["Done as asked."]
    # the prompt's end is stored, then the prompt finished and the session settled: ready, not running
    await core.until(lambda: sessions.get(core.services.engine, core.session_id).status == "ready", "ready")
    started = [e.seq for e in core.events() if e.type == "prompt_started"]
    ended = [e.seq for e in core.events() if e.type == "execution_complete"]
    assert started < ended  # started is recorded before anything the sandbox answers
    with session_scope(core.services.engine) as db:  # a new commit email (GitHub sign-in refreshes it)
        user = db.get(User, core.user.id)
        assert user is not None
        user.commit_email = "ada@noreply.example"
    second = await core.prompt("And again")  # warm now: delivered on the request's path
    await core.until(lambda: second in core.ends(), "the second prompt to end")
    assert len(core.provider.sandboxes) == 1  # the same sandbox
    [sandbox] = core.provider.sandboxes.values()
    emails = [c.author.email for c in sandbox.commands]
    assert emails == ["ada@example.com", "ada@noreply.example"]  # counted from the next prompt


async def test_a_sandbox_lost_mid_prompt_fails_it_once_and_the_next_prompt_gets_a_new_one(core: Core) -> None:
    await core.until(lambda: True, "start")
    for round_ in range(4):  # more than the breaker's three: deaths after ready are not failed starts
        core.provider.hold.clear()
        doomed = await core.prompt(f"Work {round_}")
        await core.until(lambda doomed=doomed: doomed in core.provider.sent(core.session_id), "delivery")
        await core.provider.kill(core.session_id)
        await core.until(lambda doomed=doomed: doomed in core.ends(), "the lost prompt to end")
        [end] = core.ends()[doomed]
        assert end["success"] is False and "the sandbox was lost" in end["error"]
        core.provider.hold.set()
    after = await core.prompt("After all that")
    await core.until(lambda: after in core.ends(), "a new sandbox to run the next prompt")
    assert core.ends()[after][0]["success"] is True
    assert len(core.provider.sandboxes) == 5
    assert all(len(ends) == 1 for ends in core.ends().values())


async def test_three_failed_starts_trip_the_breaker_and_a_person_resets_it(core: Core) -> None:
    core.provider.failing_spawns = 3
    waiting = await core.prompt("Try")
    await core.until(
        lambda: "3 times" in sessions.get(core.services.engine, core.session_id).status_reason, "the breaker", 20
    )
    assert [q.status for q in prompts.queue(core.services.engine, core.session_id)] == ["pending"]  # it waits
    again = await core.prompt("Please try again")  # a person asking again resets it
    await core.until(lambda: waiting in core.ends() and again in core.ends(), "both prompts to run")
    assert [e[0]["success"] for e in (core.ends()[waiting], core.ends()[again])] == [True, True]
