"""prompt tools: the MCP servers (and allowed tools) a prompt version's model may call

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-11 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("prompt_version") as batch_op:
        batch_op.add_column(
            sa.Column("mcp_servers", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(
            sa.Column("allowed_tools", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("prompt_version") as batch_op:
        batch_op.drop_column("allowed_tools")
        batch_op.drop_column("mcp_servers")
