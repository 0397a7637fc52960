"""Database engine, sessions and migration status.

One engine per database URL, created by the composition root. SQLite gets WAL, a busy timeout and
foreign keys on, so the embedded default behaves like a real database under concurrent writers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import Session as DBSession

from inspect_app.errors import ConfigError
from inspect_app.files import private_dir, private_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONNECT_TIMEOUT_S = 5


def create_db_engine(url: str) -> sa.Engine:
    """An engine for ``url`` (sqlite:/// or postgresql+psycopg://)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            if not Path(path).parent.exists():
                private_dir(Path(path).parent)
            private_file(Path(path))  # created 0600 before SQLite creates it 0644 (its WAL follows suit)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
    )


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@contextmanager
def session_scope(engine: sa.Engine) -> Iterator[DBSession]:
    """A unit of work: commits on success, rolls back on error."""
    with DBSession(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def check_connection(engine: sa.Engine, setting: str = "INSPECT_DATABASE_URL") -> None:
    """Fail with one clear line when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ConfigError(
            f"{setting}: cannot connect to {engine.url.render_as_string(hide_password=True)}: {reason}"
        ) from None


# --- migrations --------------------------------------------------------------------------------
def alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@dataclass(frozen=True)
class MigrationStatus:
    current: str | None
    head: str | None

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def migration_status(engine: sa.Engine) -> MigrationStatus:
    script = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(hide_password=False)))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return MigrationStatus(current=current, head=script.get_current_head())
