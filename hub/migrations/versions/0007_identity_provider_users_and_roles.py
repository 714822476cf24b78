"""people keyed on (issuer, subject) with email, teams and a role; how a session began

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 19:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hub_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True)
        )
        batch_op.add_column(
            sa.Column("issuer", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )
        batch_op.add_column(
            sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
        )
        batch_op.add_column(sa.Column("teams", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("role", sa.String(length=20), nullable=False, server_default="member")
        )
        batch_op.add_column(
            sa.Column("last_sign_in_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.create_unique_constraint("uq_hub_user_identity", ["issuer", "subject"])
    users = sa.table(
        "hub_user",
        sa.column("id", sa.Integer),
        sa.column("team", sa.String),
        sa.column("is_admin", sa.Boolean),
        sa.column("role", sa.String),
        sa.column("teams", sa.JSON),
    )
    connection = op.get_bind()
    for user_id, team, is_admin in connection.execute(
        sa.select(users.c.id, users.c.team, users.c.is_admin)
    ):
        connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(role="admin" if is_admin else "member", teams=[team])
        )
    with op.batch_alter_table("hub_user", schema=None) as batch_op:
        batch_op.drop_column("is_admin")
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "method",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="password",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.drop_column("method")
    with op.batch_alter_table("hub_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE hub_user SET is_admin = (role = 'admin')")
    with op.batch_alter_table("hub_user", schema=None) as batch_op:
        batch_op.drop_constraint("uq_hub_user_identity", type_="unique")
        for column in ("last_sign_in_at", "role", "teams", "subject", "issuer", "email"):
            batch_op.drop_column(column)
