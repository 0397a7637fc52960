"""session seq, snapshot and activity

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 11:13:37.597863
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import inspect_app.models
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seq", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("snapshot_ref", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(
            sa.Column(
                "last_activity_at",
                inspect_app.models.UTCDateTime(timezone=True),
                nullable=False,
                server_default=sa.func.current_timestamp(),  # existing rows: their activity is "now"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("last_activity_at")
        batch_op.drop_column("snapshot_ref")
        batch_op.drop_column("last_seq")
