"""Traces of agent runs: written as the agent runtime sends them, read by the people allowed
to see them (a run with its steps in order).

Who ran it and who owns the agent are compared as (kind, id), never by name: a person named
like a service, or a new person with a deleted one's name, reads none of their traces.
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from agents.tracing.records import RunRecord, TraceBatch
from hub.core.errors import InvalidError
from hub.models.actor import Actor
from hub.models.trace import TraceRun, TraceRunPublic, TraceStep, TraceStepPublic

__all__ = [
    "can_read",
    "forget_conversation",
    "get_trace",
    "list_traces",
    "purge_forgotten",
    "record_batch",
]

_LIST_LIMIT = 200
_RUN_COLUMNS = tuple(name for name in RunRecord.model_fields if name != "id")
_MISSING_SHOWN = 5


def record_batch(*, session: Session, batch: TraceBatch) -> None:
    """Write a batch in one transaction: its runs first (each upserted by id, the latest
    record of a run in the batch winning), then its steps, so their foreign keys hold. A step
    already written is left as it is, so a batch sent again (its answer lost) changes
    nothing. Refused, with nothing written, when a step's run is neither in the batch nor
    written before."""
    runs = {run.id: run.model_dump() for run in batch.runs}
    _require_runs({step.run_id for step in batch.steps} - runs.keys(), session=session)
    connection = session.connection()
    if runs:
        _upsert_runs(connection, list(runs.values()))
    if batch.steps:
        _insert_steps(connection, [step.model_dump() for step in batch.steps])
    session.commit()


def _require_runs(run_ids: set[str], *, session: Session) -> None:
    if not run_ids:
        return
    known = set(session.exec(select(TraceRun.id).where(col(TraceRun.id).in_(run_ids))).all())
    if missing := sorted(run_ids - known):
        shown = ", ".join(repr(run_id) for run_id in missing[:_MISSING_SHOWN])
        more = f" and {len(missing) - _MISSING_SHOWN} more" if len(missing) > _MISSING_SHOWN else ""
        raise InvalidError(
            f"Steps refer to runs the hub has no record of: {shown}{more}. Send each run (with "
            "status 'running' when it starts) in the same batch as its first steps or before; "
            "nothing of this batch was written."
        )


def _dialect_insert(connection: Connection, table: Any) -> Any:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"traces are written to SQLite or PostgreSQL, not {dialect}")


def _upsert_runs(connection: Connection, rows: list[dict[str, Any]]) -> None:
    statement = _dialect_insert(connection, TraceRun)
    changed = {name: statement.excluded[name] for name in _RUN_COLUMNS}
    connection.execute(statement.on_conflict_do_update(index_elements=["id"], set_=changed), rows)


def _insert_steps(connection: Connection, rows: list[dict[str, Any]]) -> None:
    statement = _dialect_insert(connection, TraceStep).on_conflict_do_nothing(index_elements=["id"])
    connection.execute(statement, rows)


def _of_conversation(conversation_id: str) -> ColumnElement[bool]:
    """A conversation's runs on any of its branches (the chat runs a branch of conversation
    `c` as `c~{fork}`, see app/branches.py)."""
    column = col(TraceRun.conversation_id)
    return or_(column == conversation_id, column.startswith(conversation_id + "~", autoescape=True))


def forget_conversation(
    *, session: Session, conversation_id: str, now: datetime, keep_days: int
) -> None:
    """A conversation was deleted: its runs are kept `keep_days` for audit (admins only read
    them meanwhile), or removed now when that is 0. Runs whose time is up go too."""
    runs = _of_conversation(conversation_id)
    if keep_days == 0:
        _delete_runs(session, runs)
    else:
        session.execute(
            update(TraceRun)
            .where(runs, col(TraceRun.conversation_deleted_at).is_(None))
            .values(conversation_deleted_at=now)
        )
    _delete_runs(session, _expired(now, keep_days))
    session.commit()


def purge_forgotten(*, session: Session, now: datetime, keep_days: int) -> None:
    """Remove the runs of conversations deleted more than `keep_days` ago."""
    _delete_runs(session, _expired(now, keep_days))
    session.commit()


def _expired(now: datetime, keep_days: int) -> ColumnElement[bool]:
    return col(TraceRun.conversation_deleted_at) <= now - timedelta(days=keep_days)


def _delete_runs(session: Session, runs: ColumnElement[bool]) -> None:
    # Steps first: SQLite enforces no foreign keys unless asked, so no cascade there.
    run_ids = select(TraceRun.id).where(runs)
    session.execute(delete(TraceStep).where(col(TraceStep.run_id).in_(run_ids)))
    session.execute(delete(TraceRun).where(runs))


def can_read(run: TraceRun, actor: Actor) -> bool:
    """Who ran it, the agent's owner, and admins; nobody else. A run of a deleted
    conversation, kept for audit, only admins."""
    if run.conversation_deleted_at is not None:
        return actor.is_admin
    return (
        actor.is_admin
        or actor.has_identity(run.user_kind, run.user_id)
        or actor.has_identity(run.agent_owner_kind, run.agent_owner_id)
    )


def _readable_by(actor: Actor) -> ColumnElement[bool]:
    """`can_read` as a condition on the `trace_run` table (for anyone but admins)."""
    return and_(
        col(TraceRun.conversation_deleted_at).is_(None),
        or_(
            and_(col(TraceRun.user_kind) == actor.kind, col(TraceRun.user_id) == actor.id),
            and_(
                col(TraceRun.agent_owner_kind) == actor.kind,
                col(TraceRun.agent_owner_id) == actor.id,
            ),
        ),
    )


def get_trace(*, session: Session, run_id: str, actor: Actor) -> TraceRunPublic | None:
    run = session.get(TraceRun, run_id)
    if run is None or not can_read(run, actor):
        return None
    steps = session.exec(
        select(TraceStep).where(TraceStep.run_id == run_id).order_by(col(TraceStep.seq))
    ).all()
    return TraceRunPublic(
        **run.model_dump(),
        timeline=[TraceStepPublic.model_validate(step, from_attributes=True) for step in steps],
    )


def list_traces(
    *,
    session: Session,
    actor: Actor,
    agent: str | None = None,
    conversation: str | None = None,
    offset: int = 0,
    limit: int = _LIST_LIMIT,
) -> list[TraceRunPublic]:
    """Newest first (runs that started together in their ids' order)."""
    query = (
        select(TraceRun)
        .order_by(col(TraceRun.started_at).desc(), col(TraceRun.id).desc())
        .offset(offset)
        .limit(limit)
    )
    if agent:
        query = query.where(TraceRun.agent_slug == agent)
    if conversation:
        query = query.where(_of_conversation(conversation))
    if not actor.is_admin:
        query = query.where(_readable_by(actor))
    return [TraceRunPublic(**run.model_dump()) for run in session.exec(query).all()]
