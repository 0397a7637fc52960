"""webhook deliveries

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:20:53.140670
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import inspect_app.models
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("received_at", inspect_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id"),
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
