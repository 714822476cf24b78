"""experiments: two versions of a prompt on live traffic, their calls and units' outcomes

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 17:45:07.828257
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("prompt", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("team", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("version_a", sa.Integer(), nullable=False),
        sa.Column("version_b", sa.Integer(), nullable=False),
        sa.Column("split", sa.Float(), nullable=False),
        sa.Column("differ", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("judge_model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("budget", sa.Integer(), nullable=False),
        sa.Column("shadow_calls", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("stopped_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("stopped_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.ForeignKeyConstraint(["prompt_id"], ["prompt.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("experiment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experiment_prompt"), ["prompt"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiment_prompt_id"), ["prompt_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiment_status"), ["status"], unique=False)

    op.create_table(
        "experiment_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("arm", sqlmodel.sql.sqltypes.AutoString(length=1), nullable=False),
        sa.Column("hash_a", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("hash_b", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("text_a", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("text_b", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("shadow", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("differs", sa.Boolean(), nullable=True),
        sa.Column("made_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("experiment_call", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_experiment_call_experiment_id"), ["experiment_id"], unique=False
        )

    op.create_table(
        "experiment_outcome",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("reported_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("reported_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("experiment_id", "unit", name="uq_experiment_outcome_unit"),
    )
    with op.batch_alter_table("experiment_outcome", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_experiment_outcome_experiment_id"), ["experiment_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("experiment_outcome", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_outcome_experiment_id"))

    op.drop_table("experiment_outcome")
    with op.batch_alter_table("experiment_call", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_call_experiment_id"))

    op.drop_table("experiment_call")
    with op.batch_alter_table("experiment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_status"))
        batch_op.drop_index(batch_op.f("ix_experiment_prompt_id"))
        batch_op.drop_index(batch_op.f("ix_experiment_prompt"))

    op.drop_table("experiment")
