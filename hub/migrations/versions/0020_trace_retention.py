"""trace retention: when a run's conversation was deleted

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trace_run") as batch:
        batch.add_column(
            sa.Column("conversation_deleted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch.create_index(
            "ix_trace_run_conversation_deleted_at", ["conversation_deleted_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("trace_run") as batch:
        batch.drop_index("ix_trace_run_conversation_deleted_at")
        batch.drop_column("conversation_deleted_at")
