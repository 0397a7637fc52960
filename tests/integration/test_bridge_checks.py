"""The control plane's end of the bridge, tried as a hostile sandbox would: it speaks for its own
session only, and a second connection never leaves the session linked to nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from inspect_app.control.data import prompts, sandboxes, sessions
from inspect_app.control.links import SandboxLink
from inspect_app.control.sandbox_link import SandboxConnection
from inspect_app.db import session_scope, upgrade
from inspect_app.models import MessageStatus, Repository, User
from inspect_app.services import Services, build_services
from inspect_app.settings import Settings
from sandbox.protocol import ExecutionComplete, Ready, SandboxError, Token


@dataclass
class Wire:
    """What the control plane sends one fake sandbox connection, and whether it closed it."""

    sent: list[dict] = field(default_factory=list)
    closed: bool = False

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", sandbox_isolation="none")  # type: ignore[call-arg]
    upgrade(settings.resolved_database_url)
    built = build_services(settings)
    await built.plane.events.start()
    yield built
    await built.plane.events.close()


def seed(services: Services) -> tuple[str, str, int]:
    """Two sessions of one person: (mine, theirs, author id)."""
    engine = services.engine
    with session_scope(engine) as db:
        ada, repo = User(name="Ada", email="ada@example.com"), Repository(url="/srv/demo.git", name="demo")
        db.add_all([ada, repo])
        db.flush()
        ada_id, repo_id = ada.id or 0, repo.id or 0
    mine = sessions.create(engine, repository_id=repo_id, creator_id=ada_id).id
    theirs = sessions.create(engine, repository_id=repo_id, creator_id=ada_id).id
    return mine, theirs, ada_id


def connect(services: Services, session_id: str, wire: Wire) -> SandboxConnection:
    row, _, _ = sandboxes.create(services.engine, session_id=session_id, provider="local", boot_mode="fresh")
    link = SandboxLink(session_id=session_id, sandbox_id=row.id, send_text=wire.send_text, close=wire.close)
    return SandboxConnection(services.plane, link)


async def test_a_sandbox_cannot_end_or_write_into_another_sessions_prompt(services: Services) -> None:
    mine, theirs, ada = seed(services)
    engine = services.engine
    prompts.enqueue(engine, session_id=theirs, author_id=ada, content="their work", start_if_idle=True)
    victim = prompts.processing(engine, theirs)
    assert victim is not None
    wire = Wire()
    hostile = connect(services, mine, wire)

    await hostile.handle(ExecutionComplete(message_id=victim.id, success=True, ack_id="a1"))
    await hostile.handle(SandboxError(code="agent_error", message="gave up", message_id=victim.id, ack_id="a2"))
    await hostile.handle(Token(message_id=victim.id, text="injected words"))
    await services.plane.events.append(theirs, "warning", {"message": "after"})  # written after all of the above

    still = prompts.processing(engine, theirs)
    assert still is not None and still.id == victim.id and still.status == MessageStatus.PROCESSING
    for session_id in (mine, theirs):
        events, _ = services.plane.events.page(session_id, after=0, limit=100)
        assert not [e for e in events if e.type in ("text", "execution_complete", "error")], session_id
    refusals = [m for m in wire.sent if m.get("type") == "error" and m.get("code") == "not_your_prompt"]
    assert len(refusals) == 3
    assert {m["ack_id"] for m in wire.sent if m.get("type") == "ack"} == {"a1", "a2"}  # not re-sent forever


async def test_a_second_connection_never_leaves_the_session_without_its_sandbox(services: Services) -> None:
    mine, _, _ = seed(services)
    first_wire, second_wire = Wire(), Wire()
    first = connect(services, mine, first_wire)
    await services.plane.links.attach(first.link)
    second = SandboxConnection(
        services.plane,
        SandboxLink(session_id=mine, sandbox_id=first.link.sandbox_id, send_text=second_wire.send_text),
    )
    await services.plane.links.attach(second.link)
    assert first_wire.closed  # the older connection is told to go (a live sandbox reconnects)
    await first.closed()  # its socket ends: the newer link stays
    assert services.plane.links[mine] is second.link
    reconnected = SandboxConnection(
        services.plane, SandboxLink(session_id=mine, sandbox_id=first.link.sandbox_id, send_text=Wire().send_text)
    )
    await services.plane.links.attach(reconnected.link)
    await second.closed()  # the intruder leaves: the sandbox's own connection is still the link
    assert services.plane.links[mine] is reconnected.link


async def test_an_error_for_the_running_prompt_is_its_one_end(services: Services) -> None:
    """A sandbox reporting an error for its running prompt ends it: stopped in the sandbox, failed,
    with one ``execution_complete`` carrying the reason (clients wait for that event), and a
    completion re-sent afterwards changes nothing."""
    mine, _, ada = seed(services)
    engine = services.engine
    prompts.enqueue(engine, session_id=mine, author_id=ada, content="work", start_if_idle=True)
    running = prompts.processing(engine, mine)
    assert running is not None
    wire = Wire()
    own = connect(services, mine, wire)
    await own.handle(SandboxError(code="agent_error", message="the model refused", message_id=running.id, ack_id="e1"))
    assert {"type": "stop", "message_id": running.id} in wire.sent  # what may still run of it is stopped
    await own.handle(ExecutionComplete(message_id=running.id, success=True, ack_id="e2"))
    await services.plane.events.append(mine, "warning", {"message": "after"})  # flushes what came before
    ends = [e for e in services.plane.events.page(mine, after=0, limit=100)[0] if e.type == "execution_complete"]
    assert [(e.data["success"], e.data["error"]) for e in ends] == [(False, "the model refused")]
    assert prompts.processing(engine, mine) is None


async def test_numbered_events_sent_again_on_a_second_connection_are_handled_once(services: Services) -> None:
    """The old connection still drains what it got while the new one re-sends from the handshake's
    position: each numbered event is handled once, whichever connection brings it first; a critical
    one that comes again is acknowledged again (its ack may be what was lost)."""
    mine, _, ada = seed(services)
    engine = services.engine
    prompts.enqueue(engine, session_id=mine, author_id=ada, content="work", start_if_idle=True)
    running = prompts.processing(engine, mine)
    assert running is not None
    old_wire, new_wire = Wire(), Wire()
    old = connect(services, mine, old_wire)
    new = SandboxConnection(
        services.plane, SandboxLink(session_id=mine, sandbox_id=old.link.sandbox_id, send_text=new_wire.send_text)
    )
    words = [Token(message_id=running.id, text=w, n=i) for i, w in enumerate(["one ", "two ", "three"], start=1)]
    done = ExecutionComplete(message_id=running.id, success=True, ack_id="c1", n=4)
    await old.handle(words[0])
    await old.handle(words[1])
    assert services.plane.lifecycle.bridge_received[old.link.sandbox_id] == 2  # the next handshake says so
    for message in [words[1], words[2], done]:  # re-sent past what the handshake said... and some before it
        await new.handle(message)
    await old.handle(words[2])  # the old connection's late arrivals
    await old.handle(done)
    await services.plane.events.append(mine, "warning", {"message": "after"})  # flushes what came before
    events = services.plane.events.page(mine, after=0, limit=100)[0]
    [text] = [e for e in events if e.type == "text"]
    assert text.data["text"] == "one two three"
    assert len([e for e in events if e.type == "execution_complete"]) == 1
    assert [m["ack_id"] for m in old_wire.sent + new_wire.sent if m.get("type") == "ack"] == ["c1", "c1"]
    assert "n" not in text.data and all("n" not in e.data for e in events)  # the number is the wire's, not data


async def test_a_ready_after_the_sandbox_was_stopped_does_not_bring_it_back(services: Services) -> None:
    """The server stopped the sandbox (idle, say) while its ``ready`` was on the way: the row stays
    stopped, the session gets no link to it, and no prompt is sent there."""
    mine, _, ada = seed(services)
    engine = services.engine
    wire = Wire()
    late = connect(services, mine, wire)
    await services.plane.lifecycle.stop(mine, late.link.sandbox_id, reason="idle")
    prompts.enqueue(engine, session_id=mine, author_id=ada, content="work", start_if_idle=False)
    await late.handle(Ready(sandbox_id=late.link.sandbox_id, runtime_version="0.1.0"))
    row = sandboxes.get(engine, late.link.sandbox_id)
    assert row is not None and row.status == "stopped"
    assert mine not in services.plane.links and not [m for m in wire.sent if m.get("type") == "prompt"]
    assert not sandboxes.set_status(engine, late.link.sandbox_id, "failed", error="later")  # the first end stands
