"""Migrations build exactly the schema models.py declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from inspect_app.db import create_db_engine, migration_status, upgrade


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
