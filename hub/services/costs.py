"""Usage and cost per day, by team, service, the model that answered and the prompt version a
call was made by."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from sqlalchemy import case, func, select
from sqlmodel import Session, col

from hub.models.usage import UsageRecord

__all__ = ["NOT_BY_NAME", "CostBy", "CostRow", "cost_rows"]

CostBy = Literal["team", "service", "model", "prompt"]
# The prompt key of calls not made by name (a prompt's name has no spaces, so none is this).
NOT_BY_NAME = "not by name"


@dataclass(frozen=True, slots=True)
class CostRow:
    day: date
    team: str
    service: str
    model: str
    # The prompt and version a call was made by (POST /v1/prompts/{name}/completions), if any.
    prompt: str | None
    prompt_version: int | None
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float

    def key(self, by: CostBy) -> str:
        match by:
            case "team":
                return self.team
            case "service":
                return self.service
            case "model":
                return self.model
            case "prompt":
                if self.prompt is None:
                    return NOT_BY_NAME
                if self.prompt_version is None:
                    return self.prompt
                return f"{self.prompt} v{self.prompt_version}"


def _day(value: object) -> date:
    # PostgreSQL gives a date, SQLite the text of one.
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def cost_rows(*, session: Session, start: datetime, end: datetime | None = None) -> list[CostRow]:
    """One row per day (UTC), team, service, answering model and prompt version, oldest day
    first."""
    # date() is a function in SQLite and a cast in PostgreSQL.
    day = func.date(UsageRecord.created_at)
    model = func.coalesce(UsageRecord.answered_model, UsageRecord.model)
    keys = (
        day,
        col(UsageRecord.team),
        col(UsageRecord.service_name),
        model,
        col(UsageRecord.prompt),
        col(UsageRecord.prompt_version),
    )
    query = select(
        *keys,
        func.count(),
        func.sum(case((col(UsageRecord.status_code) >= 400, 1), else_=0)),
        func.sum(UsageRecord.input_tokens),
        func.sum(UsageRecord.output_tokens),
        func.sum(UsageRecord.cost_usd),
    ).where(col(UsageRecord.created_at) >= start)
    if end is not None:
        query = query.where(col(UsageRecord.created_at) < end)
    # Within a day, calls not made by name (NULL) come first in SQLite, last in PostgreSQL.
    query = query.group_by(*keys).order_by(*keys)
    return [
        CostRow(
            day=_day(row[0]),
            team=row[1],
            service=row[2],
            model=row[3],
            prompt=row[4],
            prompt_version=row[5],
            requests=int(row[6]),
            errors=int(row[7] or 0),
            input_tokens=int(row[8] or 0),
            output_tokens=int(row[9] or 0),
            cost_usd=float(row[10] or 0.0),
        )
        # SQLModel's select() and exec() are typed for at most four columns; this takes more.
        for row in session.connection().execute(query).all()
    ]
