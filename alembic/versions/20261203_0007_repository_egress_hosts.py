"""repositories: hosts their sandboxes may reach beyond the installation's egress list

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE, not batch mode: SQLite adds and (3.35+) drops a column in place, where a batch
# would copy the table, and dropping the old one fails on the sessions that reference it.
def upgrade() -> None:
    op.add_column("repositories", sa.Column("egress_hosts", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    op.drop_column("repositories", "egress_hosts")
