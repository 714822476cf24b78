"""Reading traces: a run with its steps in order, for the people allowed to see it."""

from sqlmodel import Session, col, select

from hub.models.actor import Actor
from hub.models.trace import TraceRun, TraceRunPublic, TraceStep, TraceStepPublic

__all__ = ["can_read", "get_trace", "list_traces"]

_LIST_LIMIT = 200


def can_read(run: TraceRun, actor: Actor) -> bool:
    """The person who ran it, the agent's owner, and admins; nobody else."""
    if actor.is_admin:
        return True
    return actor.kind == "user" and actor.name in (run.user, run.agent_owner)


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
        query = query.where((TraceRun.user == actor.name) | (TraceRun.agent_owner == actor.name))
    return [TraceRunPublic(**run.model_dump()) for run in session.exec(query).all()]
