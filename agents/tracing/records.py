"""What the agent runtime sends the hub about its runs: run and step records, in batches.

One shape on both sides: the tracer builds these records and posts a `TraceBatch` to the
hub's `POST /api/traces/batch`, whose route takes the same `TraceBatch` as its request body.
The limits are the hub's columns' (`trace_run`, `trace_step`). Only pydantic here, so the
hub can import this module without the runtime.
"""

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, Field, model_validator

__all__ = [
    "MAX_BATCH_ENTRIES",
    "MAX_ERROR",
    "MAX_STEP_NAME",
    "RunRecord",
    "StepRecord",
    "TraceBatch",
]

# Runs and steps together in one batch; the tracer sends more in several.
MAX_BATCH_ENTRIES = 1000
MAX_ERROR = 2000
MAX_STEP_NAME = 200

_ID = Field(min_length=1, max_length=36)
# The largest count the database's integer columns hold (signed 64 bits).
_MAX_INT = 2**63 - 1


class RunRecord(BaseModel):
    """A run as it is now. Sent when it starts (status "running"), when it waits for a person,
    and when it ends with its totals: the hub keeps the latest it was sent."""

    id: str = _ID
    agent_slug: str = Field(max_length=63)
    agent_version: int | None = Field(default=None, ge=-_MAX_INT - 1, le=_MAX_INT)
    # The agent's owner and who ran it: a name to show, and (kind, id), which decide who
    # reads the trace.
    agent_owner: str = Field(max_length=100)
    agent_owner_kind: str = Field(max_length=20)
    agent_owner_id: str = Field(max_length=64)
    conversation_id: str | None = Field(default=None, max_length=64)
    user: str = Field(max_length=100)
    user_kind: str = Field(max_length=20)
    user_id: str = Field(max_length=64)
    started_at: datetime
    ended_at: datetime | None = None
    status: str = Field(default="running", min_length=1, max_length=20)
    error: str | None = Field(default=None, max_length=MAX_ERROR)
    steps: int = Field(default=0, ge=0, le=_MAX_INT)
    input_tokens: int = Field(default=0, ge=0, le=_MAX_INT)
    output_tokens: int = Field(default=0, ge=0, le=_MAX_INT)
    cost_usd: float = Field(default=0.0, ge=0)


class StepRecord(BaseModel):
    """One model call, tool call or approval of a run, sent once, when it has ended."""

    id: str = _ID
    run_id: str = _ID
    parent_id: str | None = Field(default=None, max_length=36)
    seq: int = Field(ge=1, le=_MAX_INT)
    kind: str = Field(min_length=1, max_length=20)
    name: str = Field(max_length=MAX_STEP_NAME)
    started_at: datetime
    ended_at: datetime
    latency_ms: float = Field(ge=0)
    input: Any = None
    output: Any = None
    input_tokens: int = Field(default=0, ge=0, le=_MAX_INT)
    output_tokens: int = Field(default=0, ge=0, le=_MAX_INT)
    cost_usd: float = Field(default=0.0, ge=0)
    error: str | None = Field(default=None, max_length=MAX_ERROR)


class TraceBatch(BaseModel):
    """Runs (the latest record of each wins) and steps, written in one transaction, runs
    first: a step's run is in the same batch or was sent before."""

    runs: list[RunRecord] = Field(default_factory=list)
    steps: list[StepRecord] = Field(default_factory=list)

    @model_validator(mode="after")
    def _within_limit(self) -> Self:
        entries = len(self.runs) + len(self.steps)
        if entries > MAX_BATCH_ENTRIES:
            raise ValueError(
                f"a batch holds at most {MAX_BATCH_ENTRIES} runs and steps together; this one "
                f"has {entries}: send the rest in another batch"
            )
        return self
