"""evaluation: test sets with versions of cases, and runs with a result per case

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 17:09:34.848896
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "eval_set",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("team", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("eval_set", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_set_name"), ["name"], unique=True)
        batch_op.create_index(batch_op.f("ix_eval_set_team"), ["team"], unique=False)

    op.create_table(
        "eval_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("set_version", sa.Integer(), nullable=False),
        sa.Column("target_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("target_version", sa.Integer(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("estimated_cost_usd", sa.Float(), nullable=False),
        sa.Column("message", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("team", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["set_id"], ["eval_set.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("eval_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_run_set_id"), ["set_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_eval_run_status"), ["status"], unique=False)

    op.create_table(
        "eval_set_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.ForeignKeyConstraint(["set_id"], ["eval_set.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("set_id", "number", name="uq_eval_set_version_number"),
    )
    with op.batch_alter_table("eval_set_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_set_version_set_id"), ["set_id"], unique=False)

    op.create_table(
        "eval_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("expected", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["eval_set_version.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version_id", "position", name="uq_eval_case_position"),
    )
    with op.batch_alter_table("eval_case", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_case_version_id"), ["version_id"], unique=False)

    op.create_table(
        "eval_result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("output", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["eval_case.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["eval_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "case_id", name="uq_eval_result_case"),
    )
    with op.batch_alter_table("eval_result", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_result_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("eval_result", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_result_run_id"))

    op.drop_table("eval_result")
    with op.batch_alter_table("eval_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_case_version_id"))

    op.drop_table("eval_case")
    with op.batch_alter_table("eval_set_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_set_version_set_id"))

    op.drop_table("eval_set_version")
    with op.batch_alter_table("eval_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_run_status"))
        batch_op.drop_index(batch_op.f("ix_eval_run_set_id"))

    op.drop_table("eval_run")
    with op.batch_alter_table("eval_set", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_set_team"))
        batch_op.drop_index(batch_op.f("ix_eval_set_name"))

    op.drop_table("eval_set")
