"""prompts: prompts with immutable versions and a production version, the history of
production (for roll back), and the prompt and version on each usage record

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _when() -> sqlmodel.sql.sqltypes.UTCDateTime:
    return sqlmodel.sql.sqltypes.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "prompt",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", _text(63), nullable=False),
        sa.Column("team", _text(100), nullable=False),
        sa.Column("description", _text(2000), nullable=False),
        sa.Column("production_version", sa.Integer(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", _text(100), nullable=False),
    )
    with op.batch_alter_table("prompt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prompt_name"), ["name"], unique=True)
        batch_op.create_index(batch_op.f("ix_prompt_team"), ["team"], unique=False)

    op.create_table(
        "prompt_version",
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("model", _text(200), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("response_format", sa.JSON(), nullable=True),
        sa.Column("note", _text(2000), nullable=False),
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "prompt_id",
            sa.Integer(),
            sa.ForeignKey("prompt.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", _text(100), nullable=False),
        sa.UniqueConstraint("prompt_id", "number", name="uq_prompt_version_number"),
    )
    with op.batch_alter_table("prompt_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prompt_version_prompt_id"), ["prompt_id"])

    op.create_table(
        "prompt_release",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "prompt_id",
            sa.Integer(),
            sa.ForeignKey("prompt.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous", sa.Integer(), nullable=True),
        sa.Column("rollback", sa.Boolean(), nullable=False),
        sa.Column("made_at", _when(), nullable=False),
        sa.Column("made_by", _text(100), nullable=False),
    )
    with op.batch_alter_table("prompt_release", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prompt_release_prompt_id"), ["prompt_id"])

    with op.batch_alter_table("usagerecord", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prompt", _text(63), nullable=True))
        batch_op.add_column(sa.Column("prompt_version", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_usagerecord_prompt"), ["prompt"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("usagerecord", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usagerecord_prompt"))
        batch_op.drop_column("prompt_version")
        batch_op.drop_column("prompt")
    op.drop_table("prompt_release")
    op.drop_table("prompt_version")
    op.drop_table("prompt")
