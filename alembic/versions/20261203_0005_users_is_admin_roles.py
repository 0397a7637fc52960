"""users.is_admin: roles (admins manage secrets, provider keys, settings and repositories)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 07:59:19
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # existing people start as non-admins (the server default); the local user stays in charge of
    # a local-mode instance, as it is made an admin again at every local-mode start
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(sa.text("UPDATE users SET is_admin = is_local"))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("is_admin")
