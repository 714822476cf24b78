"""service limits, usage keeps the answering model and the attempts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 00:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rpm_limit", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tpm_limit", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("monthly_budget_usd", sa.Float(), nullable=True))
    with op.batch_alter_table("usagerecord", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("answered_model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("usagerecord", schema=None) as batch_op:
        batch_op.drop_column("attempts")
        batch_op.drop_column("answered_model")
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.drop_column("monthly_budget_usd")
        batch_op.drop_column("tpm_limit")
        batch_op.drop_column("rpm_limit")
