"""A share link: a read-only snapshot of a conversation as it was when its owner shared it,
for any signed-in colleague or only the owner's team, until it expires or is revoked."""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from hub.models.trace import TraceRunPublic

__all__ = [
    "HIDDEN",
    "MAX_SNAPSHOT_BYTES",
    "Share",
    "ShareAudience",
    "ShareCreate",
    "SharePublic",
    "ShareView",
    "Snapshot",
    "SnapshotElement",
    "SnapshotStep",
    "TraceDetail",
]

# A conversation with a few tables and charts fits easily; more is refused with a 413.
MAX_SNAPSHOT_BYTES = 4_000_000


class ShareAudience(StrEnum):
    company = "company"  # anyone signed in
    team = "team"  # the owner's team at the time of sharing


class TraceDetail(StrEnum):
    """How much of the agent runs' traces a share carries, as its owner chooses."""

    none = "none"
    # Which model and tool calls ran, when, how long, tokens, cost and errors; not what
    # went in or came out.
    redacted = "redacted"
    full = "full"


# What a redacted trace shows in place of a step's input and output.
HIDDEN = "(hidden by the person who shared this)"


class SnapshotElement(BaseModel):
    """A table, a chart or a small file shown with a message."""

    kind: Literal["table", "chart", "file"]
    name: str = PydanticField(max_length=200)
    # table: {"columns": [...], "data": [[...], ...]}; chart: a Plotly figure; file: none.
    data: Any = None
    # file: its text, when it is small text (CSV), so a viewer can read it.
    text: str | None = PydanticField(default=None, max_length=200_000)
    mime: str | None = PydanticField(default=None, max_length=100)


class SnapshotStep(BaseModel):
    """A message or a tool call, in the order of the conversation."""

    kind: Literal["user", "assistant", "tool"]
    author: str = PydanticField(max_length=200)
    text: str = PydanticField(default="", max_length=200_000)
    # A tool call's arguments.
    input: str = PydanticField(default="", max_length=200_000)
    is_error: bool = False
    created_at: str | None = PydanticField(default=None, max_length=40)
    elements: list[SnapshotElement] = PydanticField(default_factory=list, max_length=20)


class Snapshot(BaseModel):
    """What the chat app read from the conversation at the moment it was shared."""

    # The model or agent (with its version) that answered, as the chat shows it.
    answered_by: str = PydanticField(default="", max_length=200)
    # The chat profile, so that "continue from a copy" talks to the same model or agent.
    profile: str = PydanticField(default="", max_length=200)
    steps: list[SnapshotStep] = PydanticField(max_length=2000)


class ShareCreate(BaseModel):
    thread_id: str = PydanticField(min_length=1, max_length=64)
    title: str = PydanticField(default="", max_length=200)
    audience: ShareAudience = ShareAudience.company
    expires_in_days: int = PydanticField(default=30, ge=1, le=365)
    trace: TraceDetail = TraceDetail.none
    snapshot: Snapshot


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
