"""automations and their runs (a unique claim per automation, fire and repository)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 21:14:05
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import inspect_app.models
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Additive only: new tables (docs/architecture.md, "Replicas").
def upgrade() -> None:
    op.create_table(
        "automations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("trigger", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("trigger_config", sa.JSON(), nullable=False),
        sa.Column("repository_ids", sa.JSON(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("acts_for_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("overflow", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("failures_in_a_row", sa.Integer(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("webhook_secret_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("next_fire_at", inspect_app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", inspect_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", inspect_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["acts_for_id"], ["users.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("automations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_automations_acts_for_id"), ["acts_for_id"], unique=False)

    op.create_table(
        "automation_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("automation_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("fire_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("branch", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("pull", sa.Integer(), nullable=True),
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("created_at", inspect_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", inspect_app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", inspect_app.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["automation_id"], ["automations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("automation_id", "fire_key", "repository_id", name="uq_automation_runs_fire"),
    )
    with op.batch_alter_table("automation_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_automation_runs_automation_id"), ["automation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_automation_runs_session_id"), ["session_id"], unique=False)
        batch_op.create_index("ix_automation_runs_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("automation_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_automation_runs_status")
        batch_op.drop_index(batch_op.f("ix_automation_runs_session_id"))
        batch_op.drop_index(batch_op.f("ix_automation_runs_automation_id"))

    op.drop_table("automation_runs")
    with op.batch_alter_table("automations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_automations_acts_for_id"))

    op.drop_table("automations")
