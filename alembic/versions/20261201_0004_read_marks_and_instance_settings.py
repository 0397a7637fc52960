"""read marks (unread dot), instance settings, sandbox tool tokens, commit emails

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 13:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import inspect_app.models
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instance_settings",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", inspect_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("last_read_seq", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("sandboxes") as batch:
        batch.add_column(sa.Column("tool_token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.create_unique_constraint("uq_sandboxes_tool_token_hash", ["tool_token_hash"])
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("tool_token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.create_unique_constraint("uq_images_tool_token_hash", ["tool_token_hash"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("commit_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("commit_email")
    with op.batch_alter_table("images") as batch:
        batch.drop_constraint("uq_images_tool_token_hash", type_="unique")
        batch.drop_column("tool_token_hash")
    with op.batch_alter_table("sandboxes") as batch:
        batch.drop_constraint("uq_sandboxes_tool_token_hash", type_="unique")
        batch.drop_column("tool_token_hash")
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("last_read_seq")
    op.drop_table("instance_settings")
