"""Traces of agent runs: the agent runtime (in the chat app) sends them; who may read them
reads every model call and tool call."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from agents.tracing.records import TraceBatch
from hub.api.deps import ChatApp, CurrentActor, HubStateDep, SessionDep
from hub.api.paging import PageDep
from hub.core.errors import NotFoundError
from hub.models.service import utcnow
from hub.models.trace import TraceRunPublic
from hub.services.traces import forget_conversation, get_trace, list_traces, record_batch

__all__ = ["router"]

router = APIRouter(prefix="/api/traces", tags=["traces"])


@router.post("/batch", status_code=204)
def record(batch: TraceBatch, app: ChatApp, session: SessionDep) -> Response:
    """Runs (upserted by id: sent when they start and again when they end) and steps, in one
    transaction (the chat app's service only); 422 for a step whose run the hub has not had."""
    record_batch(session=session, batch=batch)
    return Response(status_code=204)


@router.delete("", status_code=204)
def forget(
    conversation: Annotated[str, Query(min_length=1, max_length=64)],
    app: ChatApp,
    session: SessionDep,
    hub_state: HubStateDep,
) -> Response:
    """The chat app deleted `conversation`: its runs are kept for audit for
    `deleted_conversation_trace_days` (admins only read them meanwhile), then removed."""
    forget_conversation(
        session=session,
        conversation_id=conversation,
        now=utcnow(),
        keep_days=hub_state.settings.deleted_conversation_trace_days,
    )
    return Response(status_code=204)


@router.get("", response_model=list[TraceRunPublic])
def list_runs(
    actor: CurrentActor,
    session: SessionDep,
    page: PageDep,
    agent: str | None = None,
    conversation: str | None = None,
) -> list[TraceRunPublic]:
    """Newest first: the runs the caller made, runs of the caller's agents (all, for admins).
    Paged."""
    runs = list_traces(
        session=session,
        actor=actor,
        agent=agent,
        conversation=conversation,
        offset=page.offset,
        limit=page.fetch,
    )
    return page.answer(runs)


@router.get("/{run_id}", response_model=TraceRunPublic)
def get_run(run_id: str, actor: CurrentActor, session: SessionDep) -> TraceRunPublic:
    trace = get_trace(session=session, run_id=run_id, actor=actor)
    if trace is None:
        raise NotFoundError(f"No trace {run_id!r} that you can read.")
    return trace
