"""prompt contexts stored once: older prompt events lose their copy (the message keeps it)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Data only (no schema change): the columns this migration reads and writes, as they are at 0005.
events = sa.table(
    "events",
    sa.column("id", sa.BigInteger),
    sa.column("type", sa.String),
    sa.column("data", sa.JSON),
    sa.column("message_id", sa.String),
)
messages = sa.table("messages", sa.column("id", sa.String), sa.column("context", sa.JSON))


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(events.c.id, events.c.data).where(events.c.type == "prompt")).all()
    for event_id, data in rows:
        if isinstance(data, dict) and "context" in data:
            rest = {k: v for k, v in data.items() if k != "context"}
            rest["has_context"] = bool(data["context"])
            bind.execute(sa.update(events).where(events.c.id == event_id).values(data=rest))


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(events.c.id, events.c.data, messages.c.context)
        .join(messages, messages.c.id == events.c.message_id)
        .where(events.c.type == "prompt")
    ).all()
    for event_id, data, context in rows:
        if isinstance(data, dict) and data.get("has_context"):
            restored = {k: v for k, v in data.items() if k != "has_context"}
            restored["context"] = context
            bind.execute(sa.update(events).where(events.c.id == event_id).values(data=restored))
