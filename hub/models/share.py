"""A share link: a read-only snapshot of a conversation as it was when its owner shared it,
for any signed-in colleague or only the owner's team, until it expires or is revoked. What the
chat app sends to make one (`ShareCreate`) is in hub/api/contract.py."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.api.contract import ShareAudience, Snapshot, TraceDetail
from hub.models.trace import TraceRunPublic

__all__ = [
    "HIDDEN",
    "MAX_SNAPSHOT_BYTES",
    "Share",
    "SharePublic",
    "ShareView",
    "SharedMatch",
]

# A conversation with a few tables and charts fits easily; more is refused with a 413.
MAX_SNAPSHOT_BYTES = 4_000_000

# What a redacted trace shows in place of a step's input and output.
HIDDEN = "(hidden by the person who shared this)"


class Share(SQLModel, table=True):
    __tablename__ = "share_link"

    # The link's secret part; unguessable.
    id: str = Field(primary_key=True, max_length=43)
    thread_id: str = Field(max_length=64, index=True)
    title: str = Field(max_length=200)
    owner_name: str = Field(max_length=100)
    owner_kind: str = Field(max_length=20)
    owner_id: str = Field(max_length=64, index=True)
    audience: str = Field(max_length=20)
    team: str = Field(max_length=100)
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    snapshot: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    trace_detail: str = Field(default=TraceDetail.none.value, max_length=20)
    # The conversation's agent runs as their traces were when shared (TraceRunPublic).
    traces: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )


class SharePublic(SQLModel):
    id: str
    url: str
    thread_id: str
    title: str
    owner_name: str
    audience: ShareAudience
    team: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    # "active", "expired" or "revoked".
    status: str
    trace_detail: TraceDetail


class ShareView(SharePublic):
    snapshot: Snapshot
    traces: list[TraceRunPublic]


class SharedMatch(SQLModel):
    """A title or step of a conversation shared with the reader that matches their search."""

    share_id: str
    title: str
    owner_name: str
    # None when the title matched; else the step's number on the shared page, from 1.
    step_number: int | None
    snippet: str
    # The shared page, at the matching step.
    url: str
