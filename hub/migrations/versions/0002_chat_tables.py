"""chat tables for the Chainlit app (users, threads, steps, elements, feedbacks)

Chainlit 2.12's SQLAlchemyDataLayer writes these with raw SQL and quoted camelCase column
names, so names and types follow its own schema: ids and timestamps are text (it sends
uuid4 strings and ISO-8601 strings), JSON values arrive already serialised with json.dumps.
On PostgreSQL the JSON columns are JSONB and tags a text[]; on SQLite both are JSON text.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TAGS = sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("identifier", sa.Text(), nullable=False, unique=True),
        sa.Column("metadata", _JSON, nullable=False),
        sa.Column("createdAt", sa.Text()),
    )
    op.create_table(
        "threads",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("createdAt", sa.Text()),
        sa.Column("name", sa.Text()),
        sa.Column("userId", sa.Text(), sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("userIdentifier", sa.Text()),
        sa.Column("tags", _TAGS),
        sa.Column("metadata", _JSON),
    )
    op.create_index("ix_threads_userId", "threads", ["userId"])
    op.create_table(
        "steps",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column(
            "threadId",
            sa.Text(),
            sa.ForeignKey("threads.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("parentId", sa.Text()),
        sa.Column("streaming", sa.Boolean(), nullable=False),
        sa.Column("waitForAnswer", sa.Boolean()),
        sa.Column("isError", sa.Boolean()),
        sa.Column("metadata", _JSON),
        sa.Column("tags", _TAGS),
        sa.Column("input", sa.Text()),
        sa.Column("output", sa.Text()),
        sa.Column("createdAt", sa.Text()),
        sa.Column("command", sa.Text()),
        sa.Column("modes", _JSON),
        sa.Column("start", sa.Text()),
        sa.Column("end", sa.Text()),
        sa.Column("generation", _JSON),
        # Chainlit stores "true"/"false"/a language name here, not a boolean.
        sa.Column("showInput", sa.Text()),
        sa.Column("language", sa.Text()),
        sa.Column("indent", sa.Integer()),
        sa.Column("defaultOpen", sa.Boolean()),
        sa.Column("autoCollapse", sa.Boolean()),
        sa.Column("icon", sa.Text()),
    )
    op.create_index("ix_steps_threadId", "steps", ["threadId"])
    op.create_table(
        "elements",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("threadId", sa.Text(), sa.ForeignKey("threads.id", ondelete="CASCADE")),
        sa.Column("type", sa.Text()),
        sa.Column("url", sa.Text()),
        sa.Column("chainlitKey", sa.Text()),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("display", sa.Text()),
        sa.Column("objectKey", sa.Text()),
        sa.Column("size", sa.Text()),
        sa.Column("page", sa.Integer()),
        sa.Column("language", sa.Text()),
        sa.Column("forId", sa.Text()),
        sa.Column("mime", sa.Text()),
        sa.Column("props", _JSON),
        sa.Column("autoPlay", sa.Boolean()),
        sa.Column("playerConfig", _JSON),
    )
    op.create_index("ix_elements_threadId", "elements", ["threadId"])
    op.create_table(
        "feedbacks",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("forId", sa.Text(), nullable=False),
        sa.Column("threadId", sa.Text(), sa.ForeignKey("threads.id", ondelete="CASCADE")),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text()),
    )
    op.create_index("ix_feedbacks_forId", "feedbacks", ["forId"])


def downgrade() -> None:
    op.drop_index("ix_feedbacks_forId", table_name="feedbacks")
    op.drop_table("feedbacks")
    op.drop_index("ix_elements_threadId", table_name="elements")
    op.drop_table("elements")
    op.drop_index("ix_steps_threadId", table_name="steps")
    op.drop_table("steps")
    op.drop_index("ix_threads_userId", table_name="threads")
    op.drop_table("threads")
    op.drop_table("users")
