"""Migrations build exactly the schema models.py declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from alembic import command
from inspect_app.db import alembic_config, create_db_engine, migration_status, upgrade
from inspect_app.models import Event, Message, Repository, User
from inspect_app.models import Session as SessionRow


def test_upgrade_head_then_autogenerate_has_no_diff(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    engine = create_db_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
        assert diff == []
        status = migration_status(engine)
        assert status.up_to_date and status.current is not None
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    upgrade_then = create_db_engine(empty_db_url)
    try:
        from alembic import command
        from inspect_app.db import alembic_config

        command.downgrade(alembic_config(empty_db_url), "base")
        assert set(sa.inspect(upgrade_then).get_table_names()) <= {"alembic_version"}
        upgrade(empty_db_url)
        assert "events" in sa.inspect(upgrade_then).get_table_names()
    finally:
        upgrade_then.dispose()


def test_prompt_events_lose_their_copy_of_the_context(empty_db_url: str) -> None:
    """0006: a context copied into an older prompt event is dropped (the message keeps it), and back."""
    context = {"element": {"selector": "main > button"}}
    upgrade(empty_db_url, "0005")
    engine = create_db_engine(empty_db_url)

    def insert(db: sa.Connection, row: SQLModel) -> None:
        """``row`` into its table as the database has it now (later columns of the model left out)."""
        table = sa.Table(row.__tablename__, sa.MetaData(), autoload_with=db)  # type: ignore[attr-defined]
        values = {c.name: getattr(row, c.name) for c in table.columns if getattr(row, c.name, None) is not None}
        db.execute(table.insert().values(**values))

    def prompt_data() -> list[dict]:
        with engine.connect() as db:
            events = sa.Table("events", sa.MetaData(), autoload_with=db)
            rows = db.execute(sa.select(events.c.data).order_by(events.c.seq)).all()
        return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]

    try:
        with engine.begin() as db:
            session = SessionRow(repository_id=1, base_branch="main", creator_id=1)
            message = Message(session_id=session.id, author_id=1, content="Fix", context=context)
            for row in (
                User(id=1, name="Ada"),
                Repository(id=1, url="/srv/demo.git", name="demo"),
                session,
                message,
                Event(session_id=session.id, seq=1, type="prompt", data={"content": "Fix", "context": context},
                      message_id=message.id),
                Event(session_id=session.id, seq=2, type="prompt", data={"content": "Plain"}),
            ):  # fmt: skip
                insert(db, row)

        upgrade(empty_db_url)
        assert prompt_data() == [{"content": "Fix", "has_context": True}, {"content": "Plain"}]
        command.downgrade(alembic_config(empty_db_url), "0005")
        assert prompt_data() == [{"content": "Fix", "context": context}, {"content": "Plain"}]
    finally:
        engine.dispose()
