"""Traces of agent runs: every model call and tool call, for who may read them."""

from fastapi import APIRouter

from hub.api.deps import CurrentActor, SessionDep
from hub.core.errors import NotFoundError
from hub.models.trace import TraceRunPublic
from hub.services.traces import get_trace, list_traces

__all__ = ["router"]

router = APIRouter(prefix="/api/traces", tags=["traces"])


@router.get("", response_model=list[TraceRunPublic])
def list_runs(
    actor: CurrentActor,
    session: SessionDep,
    agent: str | None = None,
    conversation: str | None = None,
) -> list[TraceRunPublic]:
    """Newest first: the runs the caller made, runs of the caller's agents (all, for admins)."""
    return list_traces(session=session, actor=actor, agent=agent, conversation=conversation)


@router.get("/{run_id}", response_model=TraceRunPublic)
def get_run(run_id: str, actor: CurrentActor, session: SessionDep) -> TraceRunPublic:
    trace = get_trace(session=session, run_id=run_id, actor=actor)
    if trace is None:
        raise NotFoundError(f"No trace {run_id!r} that you can read.")
    return trace
