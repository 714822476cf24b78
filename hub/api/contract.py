"""What the hub's API takes from its clients (the chat app among them), importable without the
hub's tables: the request shapes and limits both sides must agree on. The hub's models use
these definitions; there is no second copy."""

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "MAX_COMMENT",
    "ShareAudience",
    "ShareCreate",
    "Snapshot",
    "SnapshotElement",
    "SnapshotStep",
    "TraceDetail",
]

# Feedback: the longest comment on an answer.
MAX_COMMENT = 2000


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


class SnapshotElement(BaseModel):
    """A table, a chart or a small file shown with a message."""

    kind: Literal["table", "chart", "file"]
    name: str = Field(max_length=200)
    # table: {"columns": [...], "data": [[...], ...]}; chart: a Plotly figure; file: none.
    data: Any = None
    # file: its text, when it is small text (CSV), so a viewer can read it.
    text: str | None = Field(default=None, max_length=200_000)
    mime: str | None = Field(default=None, max_length=100)


class SnapshotStep(BaseModel):
    """A message or a tool call, in the order of the conversation."""

    kind: Literal["user", "assistant", "tool"]
    author: str = Field(max_length=200)
    text: str = Field(default="", max_length=200_000)
    # A tool call's arguments.
    input: str = Field(default="", max_length=200_000)
    is_error: bool = False
    created_at: str | None = Field(default=None, max_length=40)
    elements: list[SnapshotElement] = Field(default_factory=list, max_length=20)


class Snapshot(BaseModel):
    """What the chat app read from the conversation at the moment it was shared."""

    # The model or agent (with its version) that answered, as the chat shows it.
    answered_by: str = Field(default="", max_length=200)
    # The chat profile, so that "continue from a copy" talks to the same model or agent.
    profile: str = Field(default="", max_length=200)
    steps: list[SnapshotStep] = Field(max_length=2000)


class ShareCreate(BaseModel):
    thread_id: str = Field(min_length=1, max_length=64)
    title: str = Field(default="", max_length=200)
    audience: ShareAudience = ShareAudience.company
    expires_in_days: int = Field(default=30, ge=1, le=365)
    trace: TraceDetail = TraceDetail.none
    snapshot: Snapshot
