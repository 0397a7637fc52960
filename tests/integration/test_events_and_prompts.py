"""The event store and the prompt queue on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
import sqlalchemy as sa

from inspect_app.control.data import prompts, sandboxes, sessions
from inspect_app.control.events import EventStore, _Op, bridge_position, session_channel
from inspect_app.control.hub import InProcessHub
from inspect_app.db import session_scope
from inspect_app.errors import Conflict, InvalidInput, NotFound
from inspect_app.models import Repository, User


@pytest.fixture
def seeded(engine: sa.Engine) -> tuple[sa.Engine, str, int, int]:
    with session_scope(engine) as db:
        ada, grace = User(name="Ada", email="ada@example.com"), User(name="Grace", email="grace@example.com")
        repo = Repository(url="/srv/demo.git", name="demo")
        db.add_all([ada, grace, repo])
        db.flush()
        ids = (repo.id, ada.id, grace.id)
    session = sessions.create(engine, repository_id=ids[0], creator_id=ids[1])
    return engine, session.id, ids[1], ids[2]


async def test_seq_text_rows_upserts_and_acks(seeded: tuple[sa.Engine, str, int, int]) -> None:
    engine, sid, _, _ = seeded
    hub = InProcessHub()
    store = EventStore(engine=engine, hub=hub)
    sub = await hub.subscribe(session_channel(sid))
    await store.start()
    try:
        first = await store.append(sid, "prompt", {"content": "hi"})
        for chunk in ("Hel", "lo ", "world"):
            store.append_nowait(sid, "token", {"text": chunk}, key="text:m1", mode="append_text")
        store.append_nowait(sid, "tool_call", {"call_id": "c1", "status": "running"}, key="tool:c1", mode="upsert")
        store.append_nowait(sid, "tool_call", {"status": "completed", "output": "ok"}, key="tool:c1", mode="upsert")
        done = await store.append(sid, "execution_complete", {"success": True}, ack_id="ack1")
        again = await store.append(sid, "execution_complete", {"success": True}, ack_id="ack1")
        assert first is not None and done is not None and again is None  # a re-sent critical event is stored once
        events, cursor = store.page(sid, after=0, limit=100)
        assert cursor is None
        assert [(e.seq, e.type) for e in events] == [
            (1, "prompt"),
            (2, "text"),
            (3, "tool_call"),
            (4, "execution_complete"),
        ]
        assert events[1].data["text"] == "Hello world"
        assert events[2].data == {"call_id": "c1", "status": "completed", "output": "ok"}
        live = [json.loads(await sub.get(2)) for _ in range(7)]
        assert [(e["seq"], e["type"]) for e in live] == [
            (1, "prompt"),
            (2, "token"),
            (2, "token"),
            (2, "token"),
            (3, "tool_call"),
            (3, "tool_call"),
            (4, "execution_complete"),
        ]
        page, nxt = store.page(sid, after=0, limit=2)
        assert [e.seq for e in page] == [1, 2] and nxt == 2
        assert [e.seq for e in store.page(sid, after=nxt, limit=2)[0]] == [3, 4]
        # one critical event twice in one batch (a re-send racing the original): one row, and no
        # seq or revision is skipped for the copy
        twice = [_Op(sid, "push_complete", {"branch": "b"}, ack_id="ack2") for _ in range(2)]
        await asyncio.to_thread(store._write, twice)
        after = await store.append(sid, "warning", {"message": "next"})
        assert after is not None and after.seq == 6 and after.rev == done.rev + 2
    finally:
        await store.close()


async def test_concurrent_writers_never_share_a_seq(seeded: tuple[sa.Engine, str, int, int]) -> None:
    engine, sid, _, _ = seeded
    stores = [EventStore(engine=engine, hub=InProcessHub()) for _ in range(3)]  # as if three workers
    for store in stores:
        await store.start()
    try:
        await asyncio.gather(*(store.append(sid, "x", {"i": i}) for i in range(40) for store in stores))
        events, _ = stores[0].page(sid, after=0, limit=500)
        assert [e.seq for e in events] == list(range(1, 121))
    finally:
        for store in stores:
            await store.close()


def test_queue_rules(seeded: tuple[sa.Engine, str, int, int]) -> None:
    engine, sid, ada, grace = seeded
    first = prompts.enqueue(engine, session_id=sid, author_id=ada, content="one", client_request_id="r1")
    again = prompts.enqueue(engine, session_id=sid, author_id=ada, content="one", client_request_id="r1")
    assert first.created and not again.created and again.message.id == first.message.id
    second = prompts.enqueue(engine, session_id=sid, author_id=grace, content="two")
    assert second.position == 1
    with pytest.raises(InvalidInput):
        prompts.enqueue(engine, session_id=sid, author_id=ada, content="   ")
    with pytest.raises(InvalidInput):
        prompts.enqueue(engine, session_id=sid, author_id=ada, content="x" * 64_001)
    with pytest.raises(NotFound):
        prompts.enqueue(engine, session_id="nope", author_id=ada, content="x")
    started = prompts.start_next(engine, sid)
    assert started is not None and started.id == first.message.id
    assert prompts.start_next(engine, sid) is None  # one at a time
    with pytest.raises(Conflict):
        prompts.cancel(engine, session_id=sid, message_id=first.message.id)  # running: stop it instead
    assert prompts.cancel(engine, session_id=sid, message_id=second.message.id).status == "cancelled"
    assert prompts.finish(engine, first.message.id, success=True) is not None
    assert prompts.finish(engine, first.message.id, success=False) is None  # idempotent
    for i in range(prompts.MAX_PENDING):
        prompts.enqueue(engine, session_id=sid, author_id=ada, content=f"p{i}")
    with pytest.raises(Conflict, match="already waiting"):
        prompts.enqueue(engine, session_id=sid, author_id=ada, content="one too many")
    order = [q.content for q in prompts.queue(engine, sid)]
    assert order == [f"p{i}" for i in range(prompts.MAX_PENDING)]


async def test_a_client_following_the_change_feed_sees_every_update_once(
    seeded: tuple[sa.Engine, str, int, int],
) -> None:
    """Two people, two prompts; a client polls only with the cursors it is given while the session is
    written. It sees the tool call running and later completed with its output, every final answer,
    and never the same (row, revision) twice — where a poller by seq misses updates made in place."""
    engine, sid, ada, grace = seeded
    store = EventStore(engine=engine, hub=InProcessHub())
    await store.start()
    seen: list[tuple[int, int, str, dict]] = []
    running = {"c1": asyncio.Event(), "c2": asyncio.Event()}
    writing = True

    async def follow() -> None:
        cursor = 0
        while True:
            finished = not writing  # read once more after the writer is done: the final versions
            changed, cursor, more = await asyncio.to_thread(store.changes, sid, after=cursor, limit=3)
            seen.extend((e.seq, e.rev, e.type, e.data) for e in changed)
            for e in changed:
                if e.type == "tool_call" and e.data["status"] == "running":
                    running[e.data["call_id"]].set()
            if finished and not more:
                return
            await asyncio.sleep(0.002)

    async def write() -> None:
        for author, prompt, call in ((ada, "Explain", "c1"), (grace, "Fix it", "c2")):
            await store.append(sid, "prompt", {"content": prompt, "author": {"id": author}})
            running_call = {"call_id": call, "status": "running"}
            store.append_nowait(sid, "tool_call", running_call, key=f"tool:{call}", mode="upsert")
            await asyncio.wait_for(running[call].wait(), 10)  # the tool runs a while: long enough to be seen
            for word in ("All ", "done ", f"for {prompt}."):
                store.append_nowait(sid, "token", {"text": word}, key=f"text:{call}", mode="append_text")
                await asyncio.sleep(0.01)
            store.append_nowait(
                sid, "tool_call", {"status": "completed", "output": f"{call} ok"}, key=f"tool:{call}", mode="upsert"
            )
            await store.append(sid, "execution_complete", {"success": True})

    follower = asyncio.create_task(follow())
    try:
        await write()
        writing = False
        await asyncio.wait_for(follower, 10)
    finally:
        await store.close()
    pairs = [(seq, rev) for seq, rev, _, _ in seen]
    assert len(pairs) == len(set(pairs))  # never the same (row, revision) twice
    revs = [rev for _, rev, _, _ in seen]
    assert revs == sorted(revs)
    tools = [(d.get("call_id"), d["status"], d.get("output")) for _, _, kind, d in seen if kind == "tool_call"]
    assert ("c1", "running", None) in tools and ("c1", "completed", "c1 ok") in tools
    assert tools[-1] == ("c2", "completed", "c2 ok")
    latest: dict[int, dict] = {}
    for seq, _, _, data in seen:
        latest[seq] = data
    answers = [d["text"] for d in latest.values() if "text" in d]
    assert answers == ["All done for Explain.", "All done for Fix it."]  # every final answer
    by_seq, _ = store.page(sid, after=0, limit=100)
    assert {e.seq: e.data for e in by_seq} == latest  # the feed ends where the timeline is


async def test_a_sandboxs_bridge_position_is_stored_with_the_events_it_produced(
    seeded: tuple[sa.Engine, str, int, int],
) -> None:
    """What a killed server leaves behind: the bridge number of the last sandbox message whose events
    were stored, in the same transaction, so the replica that adopts the sandbox asks for the rest."""
    engine, sid, _, _ = seeded
    created = sandboxes.create(engine, session_id=sid, provider="local", boot_mode="fresh")
    assert created is not None
    sandbox_id = created[0].id
    store = EventStore(engine=engine, hub=InProcessHub())
    await store.start()
    try:
        for n in (1, 2, 3):
            position = bridge_position.set((sandbox_id, n, 0))
            store.append_nowait(sid, "text", {"text": f"part {n}"})
            bridge_position.reset(position)
        store.append_nowait(sid, "warning", {"message": "not from the sandbox"})  # moves nothing
        await store.written()
        assert sandboxes.get(engine, sandbox_id).bridge_received == 3
        older = bridge_position.set((sandbox_id, 2, 0))  # a re-sent message handled late never moves it back
        await store.append(sid, "text", {"text": "again"})
        bridge_position.reset(older)
        assert sandboxes.get(engine, sandbox_id).bridge_received == 3
    finally:
        await store.close()


async def test_events_from_a_sandbox_another_replica_took_over_are_refused(
    seeded: tuple[sa.Engine, str, int, int],
) -> None:
    """A replica that stalled (a long pause, a partition) while a peer took its sandbox over comes
    back with events it had handled and not stored. The sandbox re-sends those to the peer, from
    the stored position the peer's takeover read; the stale replica's copies are refused, not stored
    twice, and it is told to end its link. Events not from the sandbox are stored as ever."""
    engine, sid, _, _ = seeded
    created = sandboxes.create(engine, session_id=sid, provider="local", boot_mode="fresh", replica_id="a")
    assert created is not None
    sandbox_id = created[0].id
    taken = sandboxes.take(engine, sandbox_id, "a")
    assert taken is not None
    epoch_a = taken[0]
    stale: list[tuple[str, int]] = []

    async def on_stale(sandbox: str, epoch: int) -> None:
        stale.append((sandbox, epoch))

    store = EventStore(engine=engine, hub=InProcessHub(), on_stale=on_stale)
    await store.start()

    def from_sandbox(n: int, epoch: int, text: str) -> None:
        position = bridge_position.set((sandbox_id, n, epoch))
        store.append_nowait(sid, "text", {"text": text})
        bridge_position.reset(position)

    try:
        from_sandbox(1, epoch_a, "one")
        await store.written()
        assert sandboxes.take(engine, sandbox_id, "a") == (epoch_a, 1)  # a reconnect to its owner: same epoch
        epoch_b, stored = sandboxes.take(engine, sandbox_id, "b") or (0, 0)
        assert epoch_b == epoch_a + 1 and stored == 1  # b took it over, and resumes after event 1
        from_sandbox(2, epoch_a, "two, from the stalled replica")
        store.append_nowait(sid, "warning", {"message": "not from the sandbox"})
        from_sandbox(2, epoch_b, "two")
        await store.written()
        events, _ = store.page(sid, after=0, limit=100)
        assert [e.data.get("text") or e.data.get("message") for e in events] == ["one", "not from the sandbox", "two"]
        assert stale == [(sandbox_id, epoch_a)]
        assert sandboxes.get(engine, sandbox_id).bridge_received == 2
        assert sandboxes.get(engine, sandbox_id).replica_id == "b"
    finally:
        await store.close()
