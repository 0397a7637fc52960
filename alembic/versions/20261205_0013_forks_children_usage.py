"""forks, Inspect's own pushes, the bot's answers: sessions running a fork's pull request
(``fork_ref``), runs on one (``automation_runs.fork``), the commits Inspect pushed (events about them
start nothing), the answers the GitHub bot owes (posted once, by any replica), and the repositories
a repository's sessions may start child sessions on; what each prompt used (``prompt_usage``), and
a person's monthly budget; a prompt's mode (plan or build); the MCP servers and skills agents get

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 00:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import inspect_app.models
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Additive, with defaults (see 0011): a replica of the previous version goes on writing meanwhile.
def upgrade() -> None:
    op.add_column(
        "sessions",
        sa.Column("fork_ref", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False, server_default=""),
    )
    op.add_column("automation_runs", sa.Column("fork", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("repositories", sa.Column("child_repositories", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column("users", sa.Column("monthly_budget_cents", sa.Integer(), nullable=True))
    op.add_column(
        "messages",
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default="build"),
    )
    op.create_table(
        "prompt_usage",
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("automation_id", sa.Integer(), nullable=True),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("input", sa.BigInteger(), nullable=False),
        sa.Column("output", sa.BigInteger(), nullable=False),
        sa.Column("cache_read", sa.BigInteger(), nullable=False),
        sa.Column("cache_write", sa.BigInteger(), nullable=False),
        sa.Column("at", inspect_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_table(
        "agent_extensions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", inspect_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "name", name="uq_agent_extensions_scope_name"),
    )
    op.create_index(op.f("ix_agent_extensions_repository_id"), "agent_extensions", ["repository_id"])
    op.create_index("ix_prompt_usage_user_at", "prompt_usage", ["user_id", "at"])
    op.create_index(op.f("ix_prompt_usage_session_id"), "prompt_usage", ["session_id"])
    op.create_index(op.f("ix_prompt_usage_repository_id"), "prompt_usage", ["repository_id"])
    op.create_index(op.f("ix_prompt_usage_automation_id"), "prompt_usage", ["automation_id"])
    op.create_table(
        "pushed_commits",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("sha", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("pushed_at", inspect_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("repository_id", "sha"),
    )
    op.create_table(
        "bot_replies",
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("repository", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("pull", sa.Integer(), nullable=False),
        sa.Column("answered_at", inspect_app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", inspect_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id"),
    )


def downgrade() -> None:
    op.drop_table("agent_extensions")
    op.drop_table("prompt_usage")
    op.drop_column("messages", "mode")
    op.drop_column("users", "monthly_budget_cents")
    op.drop_table("bot_replies")
    op.drop_table("pushed_commits")
    op.drop_column("repositories", "child_repositories")
    op.drop_column("automation_runs", "fork")
    op.drop_column("sessions", "fork_ref")
