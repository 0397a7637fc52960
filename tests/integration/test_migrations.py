"""Migrations build exactly the schema models.py declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel, select

from alembic import command
from inspect_app.db import alembic_config, create_db_engine, migration_status, session_scope, upgrade
from inspect_app.models import Event, Message, User
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
    try:
        with session_scope(engine) as db:
            user = User(name="Ada")
            db.add(user)
            # the repositories table as it is at 0005 (the model has columns added since)
            db.execute(
                sa.text(
                    "INSERT INTO repositories (kind, url, name, default_branch, description, keywords, prebuild,"
                    " created_at) VALUES ('local', '/srv/demo.git', 'demo', 'main', '', '[]', false, :now)"
                ),
                {"now": datetime.now(UTC)},
            )
            db.flush()
            repo_id = db.execute(sa.text("SELECT id FROM repositories")).scalar_one()
            session = SessionRow(repository_id=repo_id, base_branch="main", creator_id=user.id or 0)
            db.add(session)
            db.flush()
            message = Message(session_id=session.id, author_id=user.id or 0, content="Fix", context=context)
            db.add(message)
            db.flush()
            data = {"content": "Fix", "context": context}
            db.add(Event(session_id=session.id, seq=1, type="prompt", data=data, message_id=message.id))
            db.add(Event(session_id=session.id, seq=2, type="prompt", data={"content": "Plain"}))

        def prompt_data() -> list[dict]:
            with session_scope(engine) as db:
                return [e.data for e in db.exec(select(Event).order_by(Event.seq)).all()]

        upgrade(empty_db_url)
        assert prompt_data() == [{"content": "Fix", "has_context": True}, {"content": "Plain"}]
        command.downgrade(alembic_config(empty_db_url), "0005")
        assert prompt_data() == [{"content": "Fix", "context": context}, {"content": "Plain"}]
    finally:
        engine.dispose()
