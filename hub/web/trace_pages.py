"""Trace pages: the runs a person may read, and one run as a timeline a builder can follow."""

import anyio
from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import Response

from hub.api.deps import HubStateDep, OptionalActor
from hub.models.trace import TraceRunPublic
from hub.services.traces import get_trace, list_traces
from hub.web.pages import page, to_login

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/traces")
async def traces_page(
    request: Request,
    actor: OptionalActor,
    hub_state: HubStateDep,
    agent: str = "",
    conversation: str = "",
) -> Response:
    """The traces the person may read, of one agent and one conversation when named (an
    evaluation run's case is a conversation of its own)."""
    if actor is None:
        return to_login(request)

    def load() -> list[TraceRunPublic]:
        with Session(hub_state.engine) as session:
            return list_traces(
                session=session,
                actor=actor,
                agent=agent[:63] or None,
                conversation=conversation[:255] or None,
            )

    runs = await anyio.to_thread.run_sync(load)
    return page(request, "traces.html", actor=actor, runs=runs, agent=agent)


@router.get("/traces/{run_id}")
async def trace_page(
    request: Request, run_id: str, actor: OptionalActor, hub_state: HubStateDep
) -> Response:
    if actor is None:
        return to_login(request)

    def load() -> TraceRunPublic | None:
        with Session(hub_state.engine) as session:
            return get_trace(session=session, run_id=run_id, actor=actor)

    trace = await anyio.to_thread.run_sync(load)
    if trace is None:
        return page(request, "trace.html", status=404, actor=actor, trace=None)
    return page(request, "trace.html", actor=actor, trace=trace)
