"""Usage records: written in batches off the request path, summed for the platform team."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Engine, case, func, select
from sqlmodel import Session, col

from hub.core.batch_writer import BatchWriter
from hub.models.service import utcnow
from hub.models.usage import UsageRecord, UsageSummaryRow

__all__ = ["GroupKey", "UsageEntry", "UsageRecorder", "spent_since", "summarize_usage"]

# "model" is the model asked for; "answered_model" the one that answered (a fallback).
GroupKey = Literal[
    "service", "team", "model", "answered_model", "agent", "prompt", "prompt_version"
]
_GROUP_COLUMNS = {
    "service": col(UsageRecord.service_name),
    "team": col(UsageRecord.team),
    "model": col(UsageRecord.model),
    "answered_model": col(UsageRecord.answered_model),
    "agent": col(UsageRecord.agent),
    "prompt": col(UsageRecord.prompt),
    "prompt_version": col(UsageRecord.prompt_version),
}


@dataclass(slots=True)
class UsageEntry:
    """A usage record while its request is under way: a plain object, cheap on the hot path
    (a SQLModel row costs ~50 µs to build); written as a `UsageRecord` row."""

    service_id: int
    service_name: str
    team: str
    model: str
    deployment: str
    stream: bool
    agent: str | None = None
    prompt: str | None = None
    prompt_version: int | None = None
    answered_model: str | None = None
    attempts: int = 0
    created_at: datetime = field(default_factory=utcnow)
    input_tokens: int = 0
    output_tokens: int = 0
    usage_estimated: bool = False
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    status_code: int = 200
    error: str | None = None


class UsageRecorder(BatchWriter[UsageEntry]):
    """Queues usage records in memory (at most `max_pending`) and inserts them in one
    transaction per interval; hub/core/batch_writer.py says what happens to refused rows."""

    def __init__(self, engine: Engine, flush_interval_s: float, max_pending: int) -> None:
        super().__init__(
            engine, UsageRecord, flush_interval_s, name="usage", max_pending=max_pending
        )


def summarize_usage(
    *,
    session: Session,
    start: datetime | None,
    end: datetime | None,
    group_by: list[GroupKey],
    prompt: str | None = None,
) -> list[UsageSummaryRow]:
    """Usage summed by the `group_by` columns; only `prompt`'s calls when it is given."""
    keys = [_GROUP_COLUMNS[key] for key in group_by]
    query = select(
        *keys,
        func.count().label("requests"),
        func.sum(case((col(UsageRecord.status_code) >= 400, 1), else_=0)).label("errors"),
        func.sum(UsageRecord.input_tokens).label("input_tokens"),
        func.sum(UsageRecord.output_tokens).label("output_tokens"),
        func.sum(UsageRecord.cost_usd).label("cost_usd"),
    )
    if start is not None:
        query = query.where(col(UsageRecord.created_at) >= start)
    if end is not None:
        query = query.where(col(UsageRecord.created_at) < end)
    if prompt is not None:
        query = query.where(col(UsageRecord.prompt) == prompt)
    if keys:
        query = query.group_by(*keys).order_by(*keys)
    rows = []
    # SQLModel's select() and exec() are typed for at most four columns; this takes more.
    for row in session.connection().execute(query).all():
        values = row._mapping
        grouped: dict[str, object] = dict(zip(group_by, row[: len(group_by)], strict=True))
        rows.append(
            UsageSummaryRow.model_validate(
                {
                    # The grouping columns come first, in the order asked for.
                    **grouped,
                    "requests": values["requests"],
                    "errors": values["errors"] or 0,
                    "input_tokens": values["input_tokens"] or 0,
                    "output_tokens": values["output_tokens"] or 0,
                    "cost_usd": round(values["cost_usd"] or 0.0, 8),
                }
            )
        )
    return rows


def spent_since(engine: Engine, service_id: int, since: datetime) -> float:
    """What a service's calls have cost since `since` (blocking; for budgets, once a month)."""
    with Session(engine) as session:
        total = (
            session.connection()
            .execute(
                select(func.sum(UsageRecord.cost_usd)).where(
                    col(UsageRecord.service_id) == service_id, col(UsageRecord.created_at) >= since
                )
            )
            .scalar_one()
        )
    return float(total or 0.0)
