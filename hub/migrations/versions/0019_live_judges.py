"""live judges: a calibrated judge bound to a prompt's calls by name, and its verdicts on
the sampled calls

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 20:26:30.329572
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "live_judge",
        sa.Column("prompt", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("judge_prompt", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("judge_version", sa.Integer(), nullable=False),
        sa.Column("pass_score", sa.Float(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("daily_cap", sa.Integer(), nullable=False),
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("judged_on_day", sa.Integer(), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("prompt"),
    )
    op.create_table(
        "live_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prompt", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("judge_prompt", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("judge_version", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("answer", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("judged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("live_score", schema=None) as batch_op:
        batch_op.create_index(
            "ix_live_score_prompt_judged_at", ["prompt", "judged_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("live_score", schema=None) as batch_op:
        batch_op.drop_index("ix_live_score_prompt_judged_at")

    op.drop_table("live_score")
    op.drop_table("live_judge")
