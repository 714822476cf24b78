"""feedback: the agent (row) that gave the answer, so a re-created slug starts with none

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-09 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_feedback_agent_id", "agent", ["agent_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index(batch_op.f("ix_feedback_agent_id"), ["agent_id"], unique=False)
    # Feedback given since the agent now under its slug was made is that agent's.
    op.execute(
        "UPDATE feedback SET agent_id = ("
        "SELECT agent.id FROM agent WHERE agent.slug = feedback.agent_slug"
        " AND agent.created_at <= feedback.created_at)"
    )


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_constraint("fk_feedback_agent_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_feedback_agent_id"))
        batch_op.drop_column("agent_id")
