"""One row per gateway request: who called which model, what it cost, how it went."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from hub.models.service import utcnow

__all__ = ["UsageRecord", "UsageSummaryRow"]


class UsageRecord(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    service_id: int = Field(foreign_key="service.id", index=True)
    service_name: str = Field(max_length=100)
    team: str = Field(max_length=100, index=True)
    # The model the caller asked for, and the one that answered (a fallback, or the same).
    model: str = Field(max_length=200, index=True)
    answered_model: str | None = Field(default=None, max_length=200)
    # The deployment that answered (or the last one tried), and how many upstream calls it took.
    deployment: str = Field(max_length=200)
    attempts: int = 1
    # The agent a call was made for (the caller's X-Switchboard-Agent header), if any.
    agent: str | None = Field(default=None, max_length=63)
    # The prompt a call served by name (POST /v1/prompts/{name}/completions), and its version.
    prompt: str | None = Field(default=None, max_length=63, index=True)
    prompt_version: int | None = None
    stream: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    # True when the upstream reported no usage and the gateway counted it itself.
    usage_estimated: bool = False
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    status_code: int = 200
    error: str | None = Field(default=None, max_length=1000)


class UsageSummaryRow(SQLModel):
    service: str | None = None
    team: str | None = None
    model: str | None = None
    answered_model: str | None = None
    agent: str | None = None
    prompt: str | None = None
    prompt_version: int | None = None
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
