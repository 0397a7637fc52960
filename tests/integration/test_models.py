"""The database itself keeps the data right: constraints tested on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session as DBSession

from inspect_app.models import Event, Message, MessageStatus, Repository, Secret, Session, User, utcnow


@pytest.fixture
def seeded(engine: sa.Engine) -> Iterator[tuple[sa.Engine, str, int]]:
    with DBSession(engine) as db:
        user = User(name="Ada Lovelace", email="ada@example.com")
        repo = Repository(url="/srv/git/demo", name="demo")
        db.add_all([user, repo])
        db.flush()
        session = Session(repository_id=repo.id, base_branch="main", creator_id=user.id)  # type: ignore[arg-type]
        db.add(session)
        db.commit()
        yield engine, session.id, user.id  # type: ignore[misc]


def _insert_fails(engine: sa.Engine, *rows: object) -> bool:
    with DBSession(engine, expire_on_commit=False) as db:
        db.add_all(rows)
        try:
            db.commit()
        except sa.exc.IntegrityError:
            return True
    return False


def test_event_seq_is_unique_per_session(seeded: tuple[sa.Engine, str, int]) -> None:
    engine, sid, _ = seeded
    assert not _insert_fails(engine, Event(session_id=sid, seq=1, type="token"), Event(session_id=sid, seq=2, type="x"))
    assert _insert_fails(engine, Event(session_id=sid, seq=2, type="token"))


def test_ack_id_stores_a_critical_event_once(seeded: tuple[sa.Engine, str, int]) -> None:
    engine, sid, _ = seeded
    assert not _insert_fails(engine, Event(session_id=sid, seq=1, type="execution_complete", ack_id="a1"))
    assert _insert_fails(engine, Event(session_id=sid, seq=2, type="execution_complete", ack_id="a1"))
    # events without an ack id never collide
    assert not _insert_fails(engine, Event(session_id=sid, seq=3, type="token"), Event(session_id=sid, seq=4, type="x"))


def test_at_most_one_processing_message_per_session(seeded: tuple[sa.Engine, str, int]) -> None:
    engine, sid, uid = seeded
    first = Message(session_id=sid, author_id=uid, content="one", status=MessageStatus.PROCESSING)
    queued = [Message(session_id=sid, author_id=uid, content=f"q{i}") for i in range(3)]
    assert not _insert_fails(engine, first, *queued)
    second = Message(session_id=sid, author_id=uid, content="two", status=MessageStatus.PROCESSING)
    assert _insert_fails(engine, second)
    with DBSession(engine) as db:  # finishing the first lets the next one start
        db.get(Message, first.id).status = MessageStatus.COMPLETED  # type: ignore[union-attr]
        db.commit()
    assert not _insert_fails(engine, Message(session_id=sid, author_id=uid, content="3", status="processing"))


def test_client_request_id_is_unique_per_session(seeded: tuple[sa.Engine, str, int]) -> None:
    engine, sid, uid = seeded
    assert not _insert_fails(engine, Message(session_id=sid, author_id=uid, content="a", client_request_id="r1"))
    assert _insert_fails(engine, Message(session_id=sid, author_id=uid, content="b", client_request_id="r1"))
    assert not _insert_fails(engine, Message(session_id=sid, author_id=uid, content="c"))
    assert not _insert_fails(engine, Message(session_id=sid, author_id=uid, content="d"))


def test_secret_keys_unique_per_scope(seeded: tuple[sa.Engine, str, int]) -> None:
    engine, _, _ = seeded
    with DBSession(engine) as db:
        repo_id = db.exec(sa.select(Repository.id)).scalar_one()  # type: ignore[call-overload]
    assert not _insert_fails(
        engine,
        Secret(key="NPM_TOKEN", ciphertext=b"g"),
        Secret(key="NPM_TOKEN", repository_id=repo_id, ciphertext=b"r"),
    )
    assert _insert_fails(engine, Secret(key="NPM_TOKEN", ciphertext=b"g2"))
    assert _insert_fails(engine, Secret(key="NPM_TOKEN", repository_id=repo_id, ciphertext=b"r2"))


def test_foreign_keys_are_enforced(engine: sa.Engine) -> None:
    assert _insert_fails(engine, Event(session_id="no-such-session", seq=1, type="token"))


def test_timestamps_come_back_timezone_aware(seeded: tuple[sa.Engine, str, int]) -> None:
    engine, sid, _ = seeded
    before = utcnow()
    with DBSession(engine) as db:
        session = db.get(Session, sid)
        assert session is not None
        assert session.created_at.tzinfo is not None
        assert abs((before - session.created_at).total_seconds()) < 60
