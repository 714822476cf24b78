"""A trace: one agent run and every step in it (model calls and tool calls), failed ones too."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

__all__ = ["TraceRun", "TraceRunPublic", "TraceStep", "TraceStepPublic"]


class TraceRun(SQLModel, table=True):
    __tablename__ = "trace_run"

    id: str = Field(primary_key=True, max_length=36)
    agent_slug: str = Field(max_length=63, index=True)
    agent_version: int | None = None
    # The agent's owner and who ran the run are each a name, for display, and (kind, id): a
    # person's key or a service's id. Only the (kind, id) pairs decide who reads the trace.
    agent_owner: str = Field(max_length=100)
    agent_owner_kind: str = Field(max_length=20)
    agent_owner_id: str = Field(max_length=64, index=True)
    # The conversation (Chainlit thread) the run belongs to.
    conversation_id: str | None = Field(default=None, max_length=64, index=True)
    # When that conversation was deleted: the run is kept for audit, then removed.
    conversation_deleted_at: datetime | None = Field(default=None, index=True)
    user: str = Field(max_length=100, index=True)
    user_kind: str = Field(max_length=20)
    user_id: str = Field(max_length=64, index=True)
    started_at: datetime
    ended_at: datetime | None = None
    status: str = Field(default="running", max_length=20)
    error: str | None = Field(default=None, max_length=2000)
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class TraceStep(SQLModel, table=True):
    __tablename__ = "trace_step"

    id: str = Field(primary_key=True, max_length=36)
    run_id: str = Field(foreign_key="trace_run.id", index=True, ondelete="CASCADE")
    parent_id: str | None = Field(default=None, max_length=36)
    seq: int
    kind: str = Field(max_length=20)  # "model" or "tool"
    name: str = Field(max_length=200)
    started_at: datetime
    ended_at: datetime
    latency_ms: float
    input: Any = Field(default=None, sa_type=JSON)
    output: Any = Field(default=None, sa_type=JSON)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    error: str | None = Field(default=None, max_length=2000)


class TraceStepPublic(SQLModel):
    id: str
    parent_id: str | None
    seq: int
    kind: str
    name: str
    started_at: datetime
    ended_at: datetime
    latency_ms: float
    input: Any
    output: Any
    input_tokens: int
    output_tokens: int
    cost_usd: float
    error: str | None


class TraceRunPublic(SQLModel):
    id: str
    agent_slug: str
    agent_version: int | None
    conversation_id: str | None
    user: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    error: str | None
    steps: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    timeline: list[TraceStepPublic] = Field(default_factory=list)
