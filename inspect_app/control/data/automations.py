"""Automations and their runs in the database.

A fire is claimed by inserting its runs (one per repository) under a unique (automation, fire key,
repository): whichever replica inserts first owns the fire, a second claim of the same fire — by a
peer, or after a restart — inserts nothing. Runs start under the automation row's lock, so at most
``max_concurrent`` run at once across replicas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session as DBSession
from sqlmodel import col, func, select

from inspect_app.db import session_scope
from inspect_app.errors import NotFound
from inspect_app.models import (
    Artifact,
    Automation,
    AutomationRun,
    AutomationStatus,
    Message,
    MessageStatus,
    RunStatus,
    utcnow,
)

PAUSE_AFTER_FAILURES = 3
OPEN = (RunStatus.QUEUED, RunStatus.RUNNING)


def create(engine: sa.Engine, **fields: Any) -> Automation:
    with session_scope(engine) as db:
        automation = Automation(**fields)
        db.add(automation)
        db.flush()
        db.refresh(automation)
        return automation


def _require(db: DBSession, automation_id: int) -> Automation:
    automation = db.get(Automation, automation_id)
    if automation is None:
        raise NotFound(f"no automation {automation_id}")
    return automation


def get(engine: sa.Engine, automation_id: int) -> Automation:
    with session_scope(engine) as db:
        return _require(db, automation_id)


def list_all(engine: sa.Engine) -> list[Automation]:
    with session_scope(engine) as db:
        return list(db.exec(select(Automation).order_by(col(Automation.id))).all())


def update(engine: sa.Engine, automation_id: int, **fields: Any) -> Automation:
    with session_scope(engine) as db:
        automation = _require(db, automation_id)
        for name, value in fields.items():
            setattr(automation, name, value)
        automation.updated_at = utcnow()
        db.flush()
        db.refresh(automation)
        return automation


def delete(engine: sa.Engine, automation_id: int) -> None:
    with session_scope(engine) as db:
        automation = _require(db, automation_id)
        db.exec(sa.delete(AutomationRun).where(col(AutomationRun.automation_id) == automation_id))
        db.delete(automation)


# --- fires ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One run of a fire, as it is to be inserted."""

    repository_id: int
    prompt: str = ""
    status: str = RunStatus.QUEUED
    reason: str = ""
    branch: str | None = None
    pull: int | None = None
    fork: bool = False


def claim(
    engine: sa.Engine,
    automation_id: int,
    *,
    fire_key: str,
    source: str,
    payload: dict[str, Any],
    runs: list[Claim],
) -> list[AutomationRun]:
    """Insert the fire's runs, numbered; [] when the fire was claimed already (by anyone)."""
    now = utcnow()
    try:
        with session_scope(engine) as db:
            last = db.exec(
                sa.update(Automation)
                .where(col(Automation.id) == automation_id)
                .values(runs=col(Automation.runs) + len(runs))
                .returning(col(Automation.runs))
            ).one_or_none()
            if last is None:
                raise NotFound(f"no automation {automation_id}")
            first = last[0] - len(runs) + 1
            rows = [
                AutomationRun(
                    automation_id=automation_id,
                    number=first + i,
                    repository_id=run.repository_id,
                    fire_key=fire_key,
                    source=source,
                    status=run.status,
                    reason=run.reason,
                    payload=payload,
                    prompt=run.prompt,
                    branch=run.branch,
                    pull=run.pull,
                    fork=run.fork,
                    finished_at=None if run.status in OPEN else now,
                )
                for i, run in enumerate(runs)
            ]
            db.add_all(rows)
            db.flush()
            for row in rows:
                db.refresh(row)
                if row.status == RunStatus.FAILED:  # failed before it could start (its template)
                    _count(db, automation_id, success=False, reason=row.reason)
            return rows
    except sa.exc.IntegrityError:
        return []  # claimed already: the whole transaction (numbers too) is rolled back


def active(engine: sa.Engine, trigger: str) -> list[Automation]:
    """The automations of one trigger kind that are on."""
    with session_scope(engine) as db:
        return list(
            db.exec(
                select(Automation).where(Automation.trigger == trigger, Automation.status == AutomationStatus.ACTIVE)
            ).all()
        )


def claimed_with(engine: sa.Engine, automation_id: int, prefix: str) -> int:
    """How many runs of the automation were claimed under fire keys starting with ``prefix``."""
    with session_scope(engine) as db:
        return db.exec(
            select(func.count()).where(
                AutomationRun.automation_id == automation_id,
                col(AutomationRun.fire_key).startswith(prefix, autoescape=True),
                col(AutomationRun.status) != RunStatus.SKIPPED,
            )
        ).one()


def due_schedules(engine: sa.Engine, now: datetime) -> list[Automation]:
    with session_scope(engine) as db:
        return list(
            db.exec(
                select(Automation).where(
                    Automation.trigger == "schedule",
                    Automation.status == AutomationStatus.ACTIVE,
                    col(Automation.next_fire_at).is_not(None),
                    col(Automation.next_fire_at) <= now,
                )
            ).all()
        )


def advance(engine: sa.Engine, automation_id: int, *, seen: datetime | None, to: datetime | None) -> bool:
    """Move the next fire time from ``seen`` to ``to`` unless a peer moved it first."""
    with session_scope(engine) as db:
        moved = db.exec(
            sa.update(Automation)
            .where(col(Automation.id) == automation_id, col(Automation.next_fire_at) == seen)
            .values(next_fire_at=to)
        )
        return moved.rowcount == 1


# --- runs ----------------------------------------------------------------------------------------
def start(engine: sa.Engine, run_id: int) -> AutomationRun | None:
    """Move a queued run to running if its automation has a free slot; None otherwise (or when
    someone started it first). The automation's row is locked first, so two replicas starting runs
    of one automation count one after the other."""
    with session_scope(engine) as db:
        run = db.get(AutomationRun, run_id)
        if run is None or run.status != RunStatus.QUEUED:
            return None
        locked = db.exec(
            sa.update(Automation)
            .where(col(Automation.id) == run.automation_id)
            .values(runs=col(Automation.runs))  # a write that changes nothing: it takes the row's lock
            .returning(col(Automation.max_concurrent), col(Automation.status))
        ).one_or_none()
        if locked is None or locked[1] != AutomationStatus.ACTIVE:
            return None
        if _running(db, run.automation_id) >= locked[0]:
            return None
        moved = db.exec(
            sa.update(AutomationRun)
            .where(col(AutomationRun.id) == run_id, col(AutomationRun.status) == RunStatus.QUEUED)
            .values(status=RunStatus.RUNNING, started_at=utcnow())
        )
        if moved.rowcount != 1:
            return None
        db.refresh(run)
        return run


def free_slots(engine: sa.Engine, automation_id: int) -> int:
    with session_scope(engine) as db:
        automation = db.get(Automation, automation_id)
        if automation is None:
            return 0
        return max(0, automation.max_concurrent - _running(db, automation_id))


def _running(db: DBSession, automation_id: int) -> int:
    return db.exec(
        select(func.count()).where(
            AutomationRun.automation_id == automation_id, AutomationRun.status == RunStatus.RUNNING
        )
    ).one()


def attach_session(engine: sa.Engine, run_id: int, *, session_id: str, message_id: str) -> None:
    with session_scope(engine) as db:
        run = db.get(AutomationRun, run_id)
        if run is not None:
            run.session_id, run.message_id = session_id, message_id


def queued(engine: sa.Engine) -> list[AutomationRun]:
    """Runs waiting for a slot, oldest first."""
    with session_scope(engine) as db:
        return list(
            db.exec(
                select(AutomationRun).where(AutomationRun.status == RunStatus.QUEUED).order_by(col(AutomationRun.id))
            ).all()
        )


@dataclass(frozen=True)
class Ended:
    run_id: int
    success: bool
    reason: str


def ended_runs(engine: sa.Engine) -> list[Ended]:
    """Running runs whose prompt has ended (on whichever replica ran it)."""
    done = (MessageStatus.COMPLETED, MessageStatus.FAILED, MessageStatus.CANCELLED)
    with session_scope(engine) as db:
        rows = db.exec(
            select(AutomationRun.id, Message.status, Message.error)
            .join(Message, col(Message.id) == AutomationRun.message_id)
            .where(AutomationRun.status == RunStatus.RUNNING, col(Message.status).in_(done))
        ).all()
        return [
            Ended(run_id or 0, status == MessageStatus.COMPLETED, error or f"its prompt was {status}")
            for run_id, status, error in rows
        ]


def finish(engine: sa.Engine, run_id: int, *, success: bool, reason: str = "") -> Automation | None:
    """End an open run (once: a second call changes nothing and returns None). Counts failures in a
    row; the third pauses the automation, saying why. Returns the automation as it is now."""
    status = RunStatus.SUCCEEDED if success else RunStatus.FAILED
    with session_scope(engine) as db:
        run = db.get(AutomationRun, run_id)
        if run is None:
            return None
        ended = db.exec(
            sa.update(AutomationRun)
            .where(col(AutomationRun.id) == run_id, col(AutomationRun.status).in_(OPEN))
            .values(status=status, reason=reason, finished_at=utcnow())
        )
        if ended.rowcount != 1:
            return None
        return _count(db, run.automation_id, success=success, reason=reason)


def _count(db: DBSession, automation_id: int, *, success: bool, reason: str) -> Automation | None:
    """A run's outcome on its automation: failures in a row, and the pause at the third."""
    automation = db.get(Automation, automation_id)
    if automation is None:
        return None
    if success:
        automation.failures_in_a_row = 0
    else:
        automation.failures_in_a_row += 1
        if automation.failures_in_a_row >= PAUSE_AFTER_FAILURES and automation.status == AutomationStatus.ACTIVE:
            automation.status = AutomationStatus.PAUSED
            automation.paused_reason = (
                f"paused after {automation.failures_in_a_row} failed runs in a row; the last: {reason}"
            )
    db.flush()
    db.refresh(automation)
    return automation


def stalled(engine: sa.Engine, before: datetime) -> list[int]:
    """Runs marked running before ``before`` whose session never started (a server stopped between)."""
    with session_scope(engine) as db:
        return [
            run_id or 0
            for run_id in db.exec(
                select(AutomationRun.id).where(
                    AutomationRun.status == RunStatus.RUNNING,
                    col(AutomationRun.message_id).is_(None),
                    col(AutomationRun.started_at) < before,
                )
            ).all()
        ]


def run(engine: sa.Engine, run_id: int) -> AutomationRun:
    with session_scope(engine) as db:
        found = db.get(AutomationRun, run_id)
        if found is None:
            raise NotFound(f"no automation run {run_id}")
        return found


def runs(engine: sa.Engine, automation_id: int, *, limit: int = 50) -> list[AutomationRun]:
    with session_scope(engine) as db:
        return list(
            db.exec(
                select(AutomationRun)
                .where(AutomationRun.automation_id == automation_id)
                .order_by(col(AutomationRun.id).desc())
                .limit(limit)
            ).all()
        )


def pull_requests(engine: sa.Engine, session_ids: list[str]) -> dict[str, str]:
    """The pull request (or pushed branch) each of these sessions produced: session id → its URL."""
    if not session_ids:
        return {}
    with session_scope(engine) as db:
        rows = db.exec(
            select(Artifact.session_id, Artifact.url)
            .where(col(Artifact.session_id).in_(session_ids), col(Artifact.type).in_(("pr", "branch")))
            .order_by(col(Artifact.id))
        ).all()
        return {session_id: url for session_id, url in rows if url}


def last_runs(engine: sa.Engine) -> dict[int, AutomationRun]:
    """Each automation's newest run."""
    newest = select(func.max(AutomationRun.id)).group_by(col(AutomationRun.automation_id))
    with session_scope(engine) as db:
        return {
            run.automation_id: run for run in db.exec(select(AutomationRun).where(col(AutomationRun.id).in_(newest)))
        }
