"""eval gates: prompts bound to a test set and checks, and the gate checks that decide
whether a new version may become production

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 19:46:14.193712
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "eval_gate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("set_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("set_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["set_id"], ["eval_set.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("target_kind", "target", name="uq_eval_gate_target"),
    )
    with op.batch_alter_table("eval_gate", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_gate_set_id"), ["set_id"], unique=False)

    op.create_table(
        "eval_gate_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("candidate_version", sa.Integer(), nullable=False),
        sa.Column("baseline_version", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("set_version", sa.Integer(), nullable=False),
        sa.Column("candidate_run_id", sa.Integer(), nullable=False),
        sa.Column("baseline_run_id", sa.Integer(), nullable=False),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("candidate_score", sa.Float(), nullable=True),
        sa.Column("baseline_score", sa.Float(), nullable=True),
        sa.Column("worse", sa.JSON(), nullable=False),
        sa.Column("message", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("team", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("requested_by_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("requested_by_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("override_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.ForeignKeyConstraint(["baseline_run_id"], ["eval_run.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["candidate_run_id"], ["eval_run.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["set_id"], ["eval_set.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("eval_gate_check", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_gate_check_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_eval_gate_check_target"), ["target"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("eval_gate_check", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_gate_check_target"))
        batch_op.drop_index(batch_op.f("ix_eval_gate_check_status"))

    op.drop_table("eval_gate_check")
    with op.batch_alter_table("eval_gate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_gate_set_id"))

    op.drop_table("eval_gate")
