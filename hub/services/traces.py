"""Reading traces: a run with its steps in order, for the people allowed to see it.

Who ran it and who owns the agent are compared as (kind, id), never by name: a person named
like a service, or a new person with a deleted one's name, reads none of their traces.
"""

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import Session, col, select

from hub.models.actor import Actor
from hub.models.trace import TraceRun, TraceRunPublic, TraceStep, TraceStepPublic

__all__ = ["can_read", "get_trace", "list_traces"]

_LIST_LIMIT = 200


def can_read(run: TraceRun, actor: Actor) -> bool:
    """Who ran it, the agent's owner, and admins; nobody else."""
    return (
        actor.is_admin
        or actor.has_identity(run.user_kind, run.user_id)
        or actor.has_identity(run.agent_owner_kind, run.agent_owner_id)
    )


def _readable_by(actor: Actor) -> ColumnElement[bool]:
    """`can_read` as a condition on the `trace_run` table (for anyone but admins)."""
    return or_(
        and_(col(TraceRun.user_kind) == actor.kind, col(TraceRun.user_id) == actor.id),
        and_(
            col(TraceRun.agent_owner_kind) == actor.kind,
            col(TraceRun.agent_owner_id) == actor.id,
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
    *, session: Session, actor: Actor, agent: str | None = None, conversation: str | None = None
) -> list[TraceRunPublic]:
    query = select(TraceRun).order_by(col(TraceRun.started_at).desc()).limit(_LIST_LIMIT)
    if agent:
        query = query.where(TraceRun.agent_slug == agent)
    if conversation:
        query = query.where(TraceRun.conversation_id == conversation)
    if not actor.is_admin:
        query = query.where(_readable_by(actor))
    return [TraceRunPublic(**run.model_dump()) for run in session.exec(query).all()]
