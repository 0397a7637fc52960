"""The event store: each session's timeline, with a per-session ``seq`` and live publication.

Writes are group-committed: one writer task takes everything queued, writes it in one transaction,
then publishes each event on the hub. Invariants:

- seqs are allocated inside the writing transaction (``sessions.last_seq``), so a crash leaves no gap
  and no duplicate, and several workers never collide;
- an event is published only after it is committed, in seq order per session;
- a streamed answer is ONE row per prompt (key ``text:<message id>``) that grows; live clients get
  each delta as a ``token`` event carrying that row's seq;
- keyed events (tool calls by call id) are upserted: one row, updated in place, same seq;
- an event with an ``ack_id`` already stored is not stored again (``append`` reports the duplicate);
- every write, insert or update, gives the row the session's next revision (``sessions.last_rev``,
  allocated in the same transaction): ``changes(after=rev)`` returns every row changed since, in its
  latest version — the change feed a polling client follows without missing an update in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlmodel import Session as DBSession
from sqlmodel import col, select

from inspect_app.control.hub import Hub
from inspect_app.models import Event, utcnow
from inspect_app.models import Sandbox as SandboxRow
from inspect_app.models import Session as SessionRow

if TYPE_CHECKING:
    from inspect_app.metrics import Metrics

log = logging.getLogger(__name__)

MAX_BATCH = 1000
MAX_PAGE = 500
Mode = Literal["insert", "append_text", "upsert"]


EVENTS: sa.Table = Event.__table__  # type: ignore[attr-defined]
SESSIONS: sa.Table = SessionRow.__table__  # type: ignore[attr-defined]
SANDBOXES: sa.Table = SandboxRow.__table__  # type: ignore[attr-defined]

# The sandbox message being handled: (sandbox id, its bridge number, the owner's epoch its connection
# was taken in). Events queued while it is set record that number in the sandbox's row, in the
# transaction that stores them. A server that is killed outright then leaves the position of what it
# stored, and the replica that adopts the sandbox asks it to re-send exactly what was not
# (sandbox_link.py sets it around each message). The epoch fences: once another replica has taken the
# sandbox over (``sandboxes.take``), this one's events from it are refused, not stored twice.
bridge_position: contextvars.ContextVar[tuple[str, int, int] | None] = contextvars.ContextVar("bridge", default=None)


class _Stale(Exception):
    """Some of a batch's events came from sandboxes another replica took over since."""

    def __init__(self, fenced: set[tuple[str, int]]) -> None:
        super().__init__(f"{len(fenced)} sandbox(es) taken over by another replica")
        self.fenced = fenced  # (sandbox id, epoch)


@dataclass
class _Row:
    """An event row as the writer holds it within one batch (read, or about to be inserted)."""

    id: int | None  # None: inserted by this batch
    seq: int
    type: str
    data: dict[str, Any]
    message_id: str | None
    created_at: datetime
    ack_id: str | None = None
    key: str | None = None
    rev: int = 0
    changed: datetime | None = None  # when this batch wrote it

    def insert_values(self, session_id: str) -> dict[str, Any]:
        return {
            "session_id": session_id,
            "seq": self.seq,
            "rev": self.rev,
            "type": self.type,
            "data": self.data,
            "message_id": self.message_id,
            "ack_id": self.ack_id,
            "key": self.key,
            "created_at": self.created_at,
            "updated_at": self.changed or self.created_at,
        }


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    type: str
    data: dict[str, Any]
    message_id: str | None
    created_at: datetime
    rev: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "rev": self.rev,
            "type": self.type,
            "data": self.data,
            "message_id": self.message_id,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def of(cls, row: Event) -> StoredEvent:
        return cls(
            seq=row.seq, type=row.type, data=row.data, message_id=row.message_id, created_at=row.created_at, rev=row.rev
        )


@dataclass
class _Op:
    session_id: str
    type: str
    data: dict[str, Any]
    message_id: str | None = None
    key: str | None = None
    ack_id: str | None = None
    mode: Mode = "insert"
    future: asyncio.Future[StoredEvent | None] | None = None
    published: str | None = field(default=None, repr=False)
    result: StoredEvent | None = None
    bridge: tuple[str, int, int] | None = field(default_factory=bridge_position.get)

    @property
    def fence(self) -> tuple[str, int] | None:
        """(sandbox id, epoch) for an event from a sandbox's message."""
        return None if self.bridge is None else (self.bridge[0], self.bridge[2])


def session_channel(session_id: str) -> str:
    return f"session:{session_id}"


class EventStore:
    def __init__(
        self,
        *,
        engine: sa.Engine,
        hub: Hub,
        metrics: Metrics | None = None,
        on_stale: Callable[[str, int], Awaitable[None]] | None = None,
    ) -> None:
        self._engine = engine
        self._hub = hub
        self._metrics = metrics
        self._queue: asyncio.Queue[_Op] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._queued = 0  # events ever queued, and ever handled (stored or dropped): see ``written``
        self._handled = 0
        self._barriers: list[tuple[int, asyncio.Future[None]]] = []
        # told (sandbox id, epoch) when a batch's events from a sandbox are refused because another
        # replica took it over: the plane ends this replica's stale link to it
        self._on_stale = on_stale
        self._stale: set[tuple[str, int]] = set()

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="event-writer")

    async def close(self) -> None:
        """Write what is queued, then stop."""
        if self._writer is None:
            return
        await self._queue.join()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None

    # --- writing ---------------------------------------------------------------------------------
    async def append(
        self,
        session_id: str,
        type_: str,
        data: dict[str, Any],
        *,
        message_id: str | None = None,
        key: str | None = None,
        ack_id: str | None = None,
        mode: Mode = "insert",
    ) -> StoredEvent | None:
        """Store an event and wait for its commit. None when its ack id was already stored."""
        future: asyncio.Future[StoredEvent | None] = asyncio.get_running_loop().create_future()
        self._put(_Op(session_id, type_, data, message_id, key, ack_id, mode, future))
        return await future

    def append_nowait(
        self,
        session_id: str,
        type_: str,
        data: dict[str, Any],
        *,
        message_id: str | None = None,
        key: str | None = None,
        mode: Mode = "insert",
    ) -> None:
        """Queue an event without waiting (streamed tokens, tool call updates)."""
        self._put(_Op(session_id, type_, data, message_id, key, None, mode))

    def _put(self, op: _Op) -> None:
        self._queued += 1
        self._queue.put_nowait(op)

    async def written(self) -> None:
        """Until every event queued before this call is stored and published (what another replica
        does next must come after it: a prompt's start before the sandbox's answer)."""
        if self._handled >= self._queued:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers.append((self._queued, future))
        await future

    def _handled_one(self) -> None:
        self._queue.task_done()
        self._handled += 1
        if self._barriers and self._barriers[0][0] <= self._handled:
            passed = [b for b in self._barriers if b[0] <= self._handled]
            self._barriers = [b for b in self._barriers if b[0] > self._handled]
            for _, future in passed:
                if not future.done():
                    future.set_result(None)

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                await asyncio.to_thread(self._write_resilient, batch)
            except Exception as exc:
                log.exception("event batch of %d failed", len(batch))
                for op in batch:
                    if op.future is not None and not op.future.done():
                        op.future.set_exception(exc)
                    self._handled_one()
                continue
            stale, self._stale = self._stale, set()
            for sandbox_id, epoch in stale:
                if self._on_stale is not None:
                    try:
                        await self._on_stale(sandbox_id, epoch)
                    except Exception:
                        log.exception("ending the stale link of sandbox %s failed", sandbox_id)
            published = 0
            for op in batch:
                if op.published is not None:
                    try:
                        await self._hub.publish(session_channel(op.session_id), op.published)
                        published += 1
                    except Exception as exc:  # noqa: BLE001 - stored is what matters; clients resync
                        log.warning("publish failed: %s", exc)
                if op.future is not None and not op.future.done():
                    op.future.set_result(op.result)
                self._handled_one()
            if self._metrics is not None:
                self._metrics.events_written.inc(sum(1 for op in batch if op.result is not None))
                self._metrics.events_published.inc(published)

    def _write_resilient(self, batch: list[_Op]) -> None:
        """Write the batch; if one event breaks it (e.g. it names an unknown message), write the
        others one by one so a single bad event never costs anyone else theirs."""
        try:
            self._write(batch)
        except sa.exc.IntegrityError:
            if len(batch) == 1:
                raise
            for op in batch:
                try:
                    self._write([op])
                except sa.exc.IntegrityError as exc:
                    log.warning("dropped a %s event: %s", op.type, exc.orig)
                    op.published = None
                    op.result = None

    def _write(self, batch: list[_Op]) -> None:
        """Store the batch in one transaction. Events from a sandbox another replica has taken over
        are refused: the transaction is rolled back and written again without them (rare: a stalled
        replica coming back), the sandbox rows being updated last, as before, to keep one lock order."""
        while True:
            try:
                self._write_once(batch)
                return
            except _Stale as stale:
                refused = [op for op in batch if op.fence in stale.fenced]
                log.warning("refused %d events of sandboxes another replica serves now", len(refused))
                for op in refused:
                    op.published = None
                    op.result = None
                self._stale |= stale.fenced
                batch = [op for op in batch if op not in refused]
                if not batch:
                    return

    def _write_once(self, batch: list[_Op]) -> None:
        # SQLAlchemy Core, not the ORM: this runs for every streamed token, and the unit of work's
        # bookkeeping was most of its cost (about half the time of a one-token batch)
        with self._engine.begin() as conn:
            by_session: dict[str, list[_Op]] = {}
            for op in batch:
                by_session.setdefault(op.session_id, []).append(op)
            for session_id, ops in by_session.items():
                self._write_session(conn, session_id, ops)
            positions: dict[tuple[str, int], int] = {}  # (sandbox, epoch) → the highest number
            for op in batch:
                if op.bridge is not None and op.fence is not None:
                    positions[op.fence] = max(op.bridge[1], positions.get(op.fence, 0))
            fenced: set[tuple[str, int]] = set()
            for (sandbox_id, epoch), n in positions.items():
                moved = conn.execute(
                    sa.update(SANDBOXES)
                    .where(SANDBOXES.c.id == sandbox_id, SANDBOXES.c.owner_epoch == epoch)
                    .values(
                        bridge_received=sa.case((SANDBOXES.c.bridge_received < n, n), else_=SANDBOXES.c.bridge_received)
                    )
                )
                if moved.rowcount == 0:
                    fenced.add((sandbox_id, epoch))
            if fenced:
                raise _Stale(fenced)  # rolls back: written again without them

    def _write_session(self, conn: sa.Connection, session_id: str, ops: list[_Op]) -> None:
        keys = {op.key for op in ops if op.key}
        rows: dict[str, _Row] = {}
        if keys:
            found = conn.execute(
                sa.select(EVENTS.c.id, EVENTS.c.seq, EVENTS.c.type, EVENTS.c.data, EVENTS.c.message_id)
                .add_columns(EVENTS.c.created_at, EVENTS.c.key)
                .where(EVENTS.c.session_id == session_id, EVENTS.c.key.in_(keys))
            )
            rows = {r.key: _Row(r.id, r.seq, r.type, r.data, r.message_id, r.created_at) for r in found}
        acks = {op.ack_id for op in ops if op.ack_id}
        seen_acks: set[str] = set()
        if acks:
            seen_acks = set(
                conn.execute(
                    sa.select(EVENTS.c.ack_id).where(EVENTS.c.session_id == session_id, EVENTS.c.ack_id.in_(acks))
                ).scalars()
            )
        # how many new rows this batch creates for the session, and how many writes it makes
        new_keys: set[str] = set()
        counted_acks = set(seen_acks)  # an ack id twice in this batch (a re-send that raced) is one row
        creating = writing = 0
        for op in ops:
            if op.ack_id and op.ack_id in counted_acks:
                continue
            if op.ack_id:
                counted_acks.add(op.ack_id)
            writing += 1
            if op.key is None:
                creating += 1
            elif op.key not in rows and op.key not in new_keys:
                new_keys.add(op.key)
                creating += 1
        next_seq = next_rev = 0
        if writing:
            # one statement takes both counters: the session's row lock orders writers (replicas too)
            last = conn.execute(
                sa.update(SESSIONS)
                .where(SESSIONS.c.id == session_id)
                .values(last_seq=SESSIONS.c.last_seq + creating, last_rev=SESSIONS.c.last_rev + writing)
                .returning(SESSIONS.c.last_seq, SESSIONS.c.last_rev)
            ).one_or_none()
            if last is None:
                raise LookupError(f"no session {session_id}")
            next_seq, next_rev = last[0] - creating + 1, last[1] - writing + 1
        now = utcnow()
        inserted: list[_Row] = []
        for op in ops:
            if op.ack_id and op.ack_id in seen_acks:
                op.result = None  # a re-sent critical event: stored once already
                continue
            if op.ack_id:
                seen_acks.add(op.ack_id)
            row = rows.get(op.key) if op.key else None
            rev, next_rev = next_rev, next_rev + 1
            if row is None:
                row_type = "text" if op.mode == "append_text" else op.type
                row = _Row(None, next_seq, row_type, dict(op.data), op.message_id, now, op.ack_id, op.key)
                next_seq += 1
                inserted.append(row)
                if op.key:
                    rows[op.key] = row
            elif op.mode == "append_text":
                row.data = {**row.data, "text": row.data.get("text", "") + op.data.get("text", "")}
            else:
                row.data = {**row.data, **op.data}
            row.rev, row.changed = rev, now
            op.result = StoredEvent(row.seq, row.type, row.data, row.message_id, row.created_at, rev=rev)
            if op.mode == "append_text":
                live = StoredEvent(row.seq, "token", op.data, op.message_id, row.created_at, rev=rev)
                op.published = json.dumps(live.to_dict())
            else:
                op.published = json.dumps(op.result.to_dict())
        if inserted:
            conn.execute(sa.insert(EVENTS), [row.insert_values(session_id) for row in inserted])
        updated = [row for row in rows.values() if row.id is not None and row.changed is not None]
        if updated:
            conn.execute(
                sa.update(EVENTS)
                .where(EVENTS.c.id == sa.bindparam("row_id"))
                .values(data=sa.bindparam("data"), rev=sa.bindparam("rev"), updated_at=sa.bindparam("updated_at")),
                [{"row_id": r.id, "data": r.data, "rev": r.rev, "updated_at": r.changed} for r in updated],
            )

    # --- reading ---------------------------------------------------------------------------------
    def page(self, session_id: str, *, after: int = 0, limit: int = 100) -> tuple[list[StoredEvent], int | None]:
        """Events with seq > after, oldest first; ``next`` is the cursor for the following page."""
        events, more = self._beyond(session_id, Event.seq, after, limit)
        return events, (events[-1].seq if more else None)

    def changes(self, session_id: str, *, after: int = 0, limit: int = 100) -> tuple[list[StoredEvent], int, bool]:
        """The change feed: rows written (inserted or updated) after revision ``after``, each in its
        latest version, in revision order; then the cursor to pass next time (the last revision
        seen, or ``after`` when nothing changed) and whether more are waiting now."""
        events, more = self._beyond(session_id, Event.rev, after, limit)
        return events, (events[-1].rev if events else after), more

    def _beyond(self, session_id: str, column: Any, after: int, limit: int) -> tuple[list[StoredEvent], bool]:
        """Up to ``limit`` of the session's rows with ``column`` > ``after``, in its order; and
        whether more follow."""
        limit = max(1, min(limit, MAX_PAGE))
        with DBSession(self._engine) as db:
            query = select(Event).where(Event.session_id == session_id, column > after)
            rows = db.exec(query.order_by(col(column)).limit(limit + 1)).all()
        return [StoredEvent.of(r) for r in rows[:limit]], len(rows) > limit

    def tail(self, session_id: str, *, limit: int = 100) -> list[StoredEvent]:
        """The newest ``limit`` events, oldest first."""
        return self.before(session_id, before=None, limit=limit)

    def before(self, session_id: str, *, before: int | None, limit: int = 100) -> list[StoredEvent]:
        """Up to ``limit`` events older than seq ``before`` (None: the newest), oldest first."""
        query = select(Event).where(Event.session_id == session_id)
        if before is not None:
            query = query.where(Event.seq < before)
        with DBSession(self._engine) as db:
            rows = db.exec(query.order_by(col(Event.seq).desc()).limit(max(1, min(limit, MAX_PAGE)))).all()
        return [StoredEvent.of(r) for r in reversed(rows)]

    def newest_of(self, session_id: str, *types: str, limit: int = 20) -> list[StoredEvent]:
        """The newest ``limit`` events of these types, newest first."""
        query = select(Event).where(Event.session_id == session_id, col(Event.type).in_(types))
        with DBSession(self._engine) as db:
            rows = db.exec(query.order_by(col(Event.seq).desc()).limit(max(1, min(limit, MAX_PAGE)))).all()
        return [StoredEvent.of(r) for r in rows]

    def answers(self, session_id: str, message_ids: list[str]) -> list[StoredEvent]:
        """The answer (text) rows of these prompts."""
        keys = [f"text:{m}" for m in message_ids]
        with DBSession(self._engine) as db:
            rows = db.exec(select(Event).where(Event.session_id == session_id, col(Event.key).in_(keys))).all()
        return [StoredEvent.of(r) for r in rows]


def tool_detail(args: dict[str, Any]) -> str:
    """What a tool call was about, in one line (the timeline's cards, Slack's progress lines)."""
    for key in ("command", "filePath", "path", "pattern", "url", "description"):
        if args.get(key):
            return str(args[key])[:300]
    return ", ".join(f"{k}={v}" for k, v in list(args.items())[:3])[:300]
