"""share links: read-only snapshots of conversations, for the company or a team, that expire

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "share_link",
        sa.Column("id", _text(43), primary_key=True),
        sa.Column("thread_id", _text(64), nullable=False),
        sa.Column("title", _text(200), nullable=False),
        sa.Column("owner_name", _text(100), nullable=False),
        sa.Column("owner_kind", _text(20), nullable=False),
        sa.Column("owner_id", _text(64), nullable=False),
        sa.Column("audience", _text(20), nullable=False),
        sa.Column("team", _text(100), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("trace_detail", _text(20), nullable=False, server_default="none"),
        sa.Column("traces", sa.JSON(), nullable=False, server_default="[]"),
    )
    with op.batch_alter_table("share_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_share_link_thread_id"), ["thread_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_share_link_owner_id"), ["owner_id"], unique=False)


def downgrade() -> None:
    op.drop_table("share_link")
