"""Usage and cost per day, by team, service and the model that answered."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from sqlalchemy import case, func, select
from sqlmodel import Session, col

from hub.models.usage import UsageRecord

__all__ = ["CostBy", "CostRow", "cost_rows"]

CostBy = Literal["team", "service", "model"]


@dataclass(frozen=True, slots=True)
class CostRow:
    day: date
    team: str
    service: str
    model: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float

    def key(self, by: CostBy) -> str:
        return self.team if by == "team" else self.service if by == "service" else self.model


def _day(value: object) -> date:
    # PostgreSQL gives a date, SQLite the text of one.
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def cost_rows(*, session: Session, start: datetime, end: datetime | None = None) -> list[CostRow]:
    """One row per day (UTC), team, service and answering model, oldest day first."""
    # date() is a function in SQLite and a cast in PostgreSQL.
    day = func.date(UsageRecord.created_at)
    model = func.coalesce(UsageRecord.answered_model, UsageRecord.model)
    query = select(
        day,
        col(UsageRecord.team),
        col(UsageRecord.service_name),
        model,
        func.count(),
        func.sum(case((col(UsageRecord.status_code) >= 400, 1), else_=0)),
        func.sum(UsageRecord.input_tokens),
        func.sum(UsageRecord.output_tokens),
        func.sum(UsageRecord.cost_usd),
    ).where(col(UsageRecord.created_at) >= start)
    if end is not None:
        query = query.where(col(UsageRecord.created_at) < end)
    query = query.group_by(day, UsageRecord.team, UsageRecord.service_name, model).order_by(
        day, UsageRecord.team, UsageRecord.service_name, model
    )
    return [
        CostRow(
            day=_day(row[0]),
            team=row[1],
            service=row[2],
            model=row[3],
            requests=int(row[4]),
            errors=int(row[5] or 0),
            input_tokens=int(row[6] or 0),
            output_tokens=int(row[7] or 0),
            cost_usd=float(row[8] or 0.0),
        )
        # SQLModel's select() and exec() are typed for at most four columns; this takes more.
        for row in session.connection().execute(query).all()
    ]
