"""eval labels: people's labels on runs' rows, judge calibrations with their verdicts, and
judges' kappa thresholds

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 17:45:04.969166
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "eval_judge",
        sa.Column("prompt", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("kappa_threshold", sa.Float(), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("prompt"),
    )
    op.create_table(
        "eval_calibration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prompt", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("pass_score", sa.Float(), nullable=False),
        sa.Column("labels", sa.Integer(), nullable=False),
        sa.Column("both_pass", sa.Integer(), nullable=False),
        sa.Column("judge_pass_people_fail", sa.Integer(), nullable=False),
        sa.Column("judge_fail_people_pass", sa.Integer(), nullable=False),
        sa.Column("both_fail", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("kappa", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["eval_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("eval_calibration", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_calibration_prompt"), ["prompt"], unique=False)
        batch_op.create_index(batch_op.f("ix_eval_calibration_run_id"), ["run_id"], unique=False)

    op.create_table(
        "eval_label",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("labelled_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("labelled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["eval_case.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["eval_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "case_id", name="uq_eval_label_case"),
    )
    with op.batch_alter_table("eval_label", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_label_run_id"), ["run_id"], unique=False)

    op.create_table(
        "eval_verdict",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calibration_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("people_passed", sa.Boolean(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.ForeignKeyConstraint(["calibration_id"], ["eval_calibration.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["case_id"], ["eval_case.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("eval_verdict", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_eval_verdict_calibration_id"), ["calibration_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("eval_verdict", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_verdict_calibration_id"))

    op.drop_table("eval_verdict")
    with op.batch_alter_table("eval_label", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_label_run_id"))

    op.drop_table("eval_label")
    with op.batch_alter_table("eval_calibration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_calibration_run_id"))
        batch_op.drop_index(batch_op.f("ix_eval_calibration_prompt"))

    op.drop_table("eval_calibration")
    op.drop_table("eval_judge")
