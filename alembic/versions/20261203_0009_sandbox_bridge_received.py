"""sandboxes: the highest numbered bridge event handled, kept across a server restart

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE (see 0007).
def upgrade() -> None:
    op.add_column("sandboxes", sa.Column("bridge_received", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("sandboxes", "bridge_received")
