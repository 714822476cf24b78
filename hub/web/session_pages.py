"""Admins' page of sign-in sessions: who is signed in, since when, and a button to end one."""

import anyio
from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from hub.api.deps import HubStateDep, OptionalActor, RowId
from hub.core.roles import Permission
from hub.models.actor import Actor
from hub.models.web_session import WebSessionPublic
from hub.services.web_sessions import end_web_session_by_id, list_web_sessions
from hub.web.pages import page, to_login

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _refused(request: Request, actor: Actor) -> Response:
    return page(
        request,
        "sessions.html",
        status=403,
        actor=actor,
        sessions=[],
        error="Only admins see and end people's sessions.",
    )


@router.get("/sessions")
async def sessions_page(request: Request, actor: OptionalActor, hub_state: HubStateDep) -> Response:
    if actor is None:
        return to_login(request)
    if not actor.may(Permission.administer):
        return _refused(request, actor)

    def load() -> list[WebSessionPublic]:
        with Session(hub_state.engine) as session:
            return list_web_sessions(session=session)

    found = await anyio.to_thread.run_sync(load)
    return page(request, "sessions.html", actor=actor, sessions=found, error=None)


@router.post("/sessions/{session_id}/revoke")
async def revoke_session(
    request: Request, session_id: RowId, actor: OptionalActor, hub_state: HubStateDep
) -> Response:
    if actor is None:
        return to_login(request)
    if not actor.may(Permission.administer):
        return _refused(request, actor)

    def revoke() -> None:
        with Session(hub_state.engine) as session:
            end_web_session_by_id(session=session, session_id=session_id, actor=actor)

    await anyio.to_thread.run_sync(revoke)
    return RedirectResponse("/sessions", status_code=303)
