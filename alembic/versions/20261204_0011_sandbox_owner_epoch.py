"""sandboxes: the owner's epoch, raised each time another replica takes a sandbox over, so the
writes of the replica that served it before (a stalled one) are refused

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE (see 0007). Additive, with a default: a replica of the previous version goes on
# writing while this one runs (deploy/README.md).
def upgrade() -> None:
    op.add_column("sandboxes", sa.Column("owner_epoch", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("sandboxes", "owner_epoch")
