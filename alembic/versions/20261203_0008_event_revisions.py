"""events: a per-session revision, bumped on every insert and update (the change feed's cursor)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 14:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE (see 0007). Existing rows take their seq as revision: in seq order, as written.
def upgrade() -> None:
    op.add_column("events", sa.Column("rev", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("sessions", sa.Column("last_rev", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(sa.text("UPDATE events SET rev = seq"))
    op.execute(sa.text("UPDATE sessions SET last_rev = last_seq"))
    op.create_index("ix_events_session_rev", "events", ["session_id", "rev"])


def downgrade() -> None:
    op.drop_index("ix_events_session_rev", table_name="events")
    op.drop_column("sessions", "last_rev")
    op.drop_column("events", "rev")
