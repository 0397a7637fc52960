"""replicas, and which replica serves each sandbox

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import inspect_app.models
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "status IN ('spawning', 'connected', 'ready')"  # as of this revision (models.LIVE_SANDBOX_SQL)


# Additive only (a new table, a column with a default): a replica of the previous version keeps
# working beside one of this version while a deploy rolls (docs/architecture.md, "Replicas").
def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("started_at", inspect_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", inspect_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.add_column(
        "sandboxes",
        sa.Column("replica_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default=""),
    )
    op.create_index("ix_sandboxes_replica_id", "sandboxes", ["replica_id"])
    # one live sandbox per session: an older live row beside a newer one (there should be none) is stale
    op.execute(
        """UPDATE sandboxes SET status = 'stale'
        WHERE status IN ('spawning', 'connected', 'ready') AND EXISTS (
            SELECT 1 FROM sandboxes AS newer WHERE newer.session_id = sandboxes.session_id
            AND newer.status IN ('spawning', 'connected', 'ready') AND newer.created_at > sandboxes.created_at)"""
    )
    op.create_index(
        "uq_sandboxes_one_live",
        "sandboxes",
        ["session_id"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )


def downgrade() -> None:
    op.drop_index("uq_sandboxes_one_live", table_name="sandboxes")
    op.drop_index("ix_sandboxes_replica_id", table_name="sandboxes")
    op.drop_column("sandboxes", "replica_id")
    op.drop_table("replicas")
