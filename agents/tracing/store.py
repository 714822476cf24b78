"""Trace rows and their writer: runs upserted, steps inserted, one transaction per flush."""

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.dialects import postgresql, sqlite

from hub.core.batch_writer import BatchWriter
from hub.models.trace import TraceRun, TraceStep

__all__ = ["RunRow", "StepRow", "TraceWriter"]


@dataclass(slots=True)
class RunRow:
    id: str
    agent_slug: str
    agent_version: int | None
    agent_owner: str
    agent_owner_kind: str
    agent_owner_id: str
    conversation_id: str | None
    user: str
    user_kind: str
    user_id: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    error: str | None
    steps: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(slots=True)
class StepRow:
    id: str
    run_id: str
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


_RUN_COLUMNS = tuple(field.name for field in dataclasses.fields(RunRow))


def _upsert_runs(connection: Connection, rows: list[dict[str, Any]]) -> None:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(TraceRun).values(rows)
    elif dialect == "sqlite":
        statement = sqlite.insert(TraceRun).values(rows)
    else:
        raise NotImplementedError(f"traces are written to SQLite or PostgreSQL, not {dialect}")
    changed = {name: statement.excluded[name] for name in _RUN_COLUMNS if name != "id"}
    connection.execute(statement.on_conflict_do_update(index_elements=["id"], set_=changed))


class TraceWriter(BatchWriter[RunRow | StepRow]):
    """A BatchWriter for two tables: in each flush, the runs (newest row of each) first, so
    their steps' foreign keys hold, then the steps in one INSERT, in one transaction."""

    def __init__(self, engine: Engine, flush_interval_s: float) -> None:
        super().__init__(engine, TraceStep, flush_interval_s, "trace")

    def _write(self, batch: list[RunRow | StepRow]) -> None:
        runs: dict[str, dict[str, Any]] = {}
        steps: list[dict[str, Any]] = []
        for entry in batch:
            if isinstance(entry, RunRow):
                runs[entry.id] = dataclasses.asdict(entry)
            else:
                steps.append(dataclasses.asdict(entry))
        with self._engine.begin() as connection:
            if runs:
                _upsert_runs(connection, list(runs.values()))
            if steps:
                connection.execute(insert(self._table), steps)
