"""The sessions list (unread marks, PR state) and instance settings, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from inspect_app.control.data import instance, prompts, sandboxes, sessions
from inspect_app.control.events import EventStore
from inspect_app.control.hub import InProcessHub
from inspect_app.db import session_scope
from inspect_app.errors import Forbidden, InvalidInput
from inspect_app.models import Artifact, Repository, SandboxStatus, User


@pytest.fixture
def people(engine: sa.Engine) -> tuple[int, int, int]:
    with session_scope(engine) as db:
        ada, grace, repo = User(name="Ada"), User(name="Grace"), Repository(url="/srv/demo.git", name="demo")
        db.add_all([ada, grace, repo])
        db.flush()
        return repo.id or 0, ada.id or 0, grace.id or 0


def _row(engine: sa.Engine, session_id: str, viewer: int) -> sessions.SessionSummary:
    return next(s for s in sessions.list_sessions(engine, viewer_id=viewer) if s.id == session_id)


async def test_unread_follows_what_each_participant_has_seen(engine: sa.Engine, people: tuple[int, int, int]) -> None:
    repo, ada, grace = people
    sid = sessions.create(engine, repository_id=repo, creator_id=ada).id
    sessions.join(engine, sid, grace)
    outsider = sessions.create(engine, repository_id=repo, creator_id=grace).id
    store = EventStore(engine=engine, hub=InProcessHub())
    await store.start()
    try:
        assert not _row(engine, sid, ada).unread  # nothing happened yet
        await store.append(sid, "prompt", {"content": "hi"})
        last = await store.append(sid, "execution_complete", {"success": True})
    finally:
        await store.close()
    assert last is not None
    assert _row(engine, sid, ada).unread and _row(engine, sid, grace).unread
    assert not _row(engine, outsider, ada).unread  # Ada is not in Grace's session: no dot there
    sessions.mark_read(engine, sid, ada, last.seq)
    assert not _row(engine, sid, ada).unread
    assert _row(engine, sid, grace).unread  # marks are per person
    sessions.mark_read(engine, sid, ada, 1)  # an older tab reporting late never moves the mark back
    assert not _row(engine, sid, ada).unread


def test_the_newest_pull_request_state_is_listed(engine: sa.Engine, people: tuple[int, int, int]) -> None:
    repo, ada, _ = people
    sid = sessions.create(engine, repository_id=repo, creator_id=ada).id
    assert _row(engine, sid, ada).pr_state == ""
    with session_scope(engine) as db:
        db.add(Artifact(session_id=sid, type="branch", url="http://git/compare", state=""))
        db.add(Artifact(session_id=sid, type="pr", url="http://git/pr/1", state="closed"))
        db.flush()
        db.add(Artifact(session_id=sid, type="pr", url="http://git/pr/2", state="merged"))
    assert _row(engine, sid, ada).pr_state == "merged"


def test_default_model_is_chosen_at_run_time_and_validated(engine: sa.Engine, people: tuple[int, int, int]) -> None:
    repo, ada, grace = people
    with session_scope(engine) as db:
        admin = db.get(User, ada)
        assert admin is not None
        admin.is_admin = True
    assert instance.default_model(engine, "llm/default") == "llm/default"
    with pytest.raises(InvalidInput):
        instance.set_default_model(engine, "no-slash", actor_id=ada)
    with pytest.raises(InvalidInput):
        instance.set_default_model(engine, "a/b; rm -rf /", actor_id=ada)
    instance.set_default_model(engine, " anthropic/claude-sonnet-4-5 ", actor_id=ada)
    instance.set_default_model(engine, "openai/gpt-5", actor_id=ada)  # changed again: one row, newest value
    with pytest.raises(Forbidden):
        instance.set_default_model(engine, "openai/gpt-4", actor_id=grace)  # not an admin
    assert instance.default_model(engine, "llm/default") == "openai/gpt-5"
    with pytest.raises(InvalidInput):
        sessions.create(engine, repository_id=repo, creator_id=ada, model="bad model")


def test_the_breaker_counts_sandboxes_that_failed_to_start_not_ones_that_died_later(
    engine: sa.Engine, people: tuple[int, int, int]
) -> None:
    repo, ada, _ = people
    sid = sessions.create(engine, repository_id=repo, creator_id=ada).id

    def sandbox(*, was_ready: bool) -> None:
        row, _, _ = sandboxes.create(engine, session_id=sid, provider="local", boot_mode="fresh")
        if was_ready:
            sandboxes.mark_ready(engine, row.id, runtime_version="0.1.0")
        sandboxes.set_status(engine, row.id, SandboxStatus.FAILED, error="the sandbox process exited")

    for _ in range(3):
        sandbox(was_ready=True)  # killed mid-prompt, three times: each prompt failed, no boot did
    assert sandboxes.recent_failures(engine, sid, 300) == []
    sandbox(was_ready=False)
    assert [row.error for row in sandboxes.recent_failures(engine, sid, 300)] == ["the sandbox process exited"]


def test_settling_reads_and_writes_the_status_in_one_statement(engine: sa.Engine, people: tuple[int, int, int]) -> None:
    repo, ada, _ = people
    sid = sessions.create(engine, repository_id=repo, creator_id=ada).id
    sessions.settle(engine, sid, sandbox_up=True)
    assert sessions.get(engine, sid).status == "ready"
    queued = prompts.enqueue(engine, session_id=sid, author_id=ada, content="work", start_if_idle=True)
    assert queued.started and sessions.get(engine, sid).status == "running"  # set with the prompt, at once
    sessions.settle(engine, sid, sandbox_up=False)
    assert sessions.get(engine, sid).status == "running"  # a prompt is processing, whatever else is true
    prompts.finish(engine, queued.message.id, success=True)
    sessions.settle(engine, sid, sandbox_up=False)
    assert sessions.get(engine, sid).status == "stopped"
