"""feedback: thumbs up or down and a comment on an answer in the chat, one per person and message

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("person_kind", _text(20), nullable=False),
        sa.Column("person_id", _text(64), nullable=False),
        sa.Column("person_name", _text(100), nullable=False),
        sa.Column("conversation_id", _text(64), nullable=False),
        sa.Column("message_id", _text(64), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("comment", _text(2000), nullable=False),
        sa.Column("model", _text(200), nullable=False),
        sa.Column("agent_slug", _text(63), nullable=True),
        sa.Column("agent_version", sa.Integer(), nullable=True),
        sa.Column("trace_id", _text(36), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("person_kind", "person_id", "message_id", name="uq_feedback_message"),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_person_id"), ["person_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_feedback_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_feedback_agent_slug"), ["agent_slug"], unique=False)


def downgrade() -> None:
    op.drop_table("feedback")
