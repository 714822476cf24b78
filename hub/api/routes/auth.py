"""Sign-in sessions: the chat app asks who a session cookie belongs to (and ends it at
sign-out); admins list and revoke sessions."""

from typing import Annotated

from fastapi import APIRouter, Header, Response

from hub.api.deps import AdminActor, ChatApp, CurrentActor, RowId, SessionDep
from hub.api.paging import PageDep
from hub.core.errors import NotFoundError, UnauthenticatedError
from hub.models.user import UserPublic
from hub.models.web_session import WebSessionPublic
from hub.services.web_sessions import (
    end_web_session,
    end_web_session_by_id,
    list_web_sessions,
    user_for_web_session,
)

__all__ = ["SESSION_HEADER", "router"]

router = APIRouter(prefix="/api/auth", tags=["auth"])

# The chat app forwards the person's session cookie in this header.
SESSION_HEADER = "x-switchboard-session"

SessionToken = Annotated[str, Header(alias=SESSION_HEADER, min_length=1, max_length=200)]


@router.get("/session", response_model=UserPublic)
def session_user(app: ChatApp, token: SessionToken, session: SessionDep) -> UserPublic:
    """The person whose session this is (the chat app only); 401 when it ended or expired."""
    user = user_for_web_session(session=session, token=token)
    if user is None:
        raise UnauthenticatedError(
            "This session has ended or expired; sign in again.", code="session_ended"
        )
    return UserPublic.model_validate(user, from_attributes=True)


@router.post("/session/end", status_code=204)
def end_session(app: ChatApp, token: SessionToken, session: SessionDep) -> Response:
    """End a session when its person signs out of the chat (the chat app only)."""
    end_web_session(session=session, token=token)
    return Response(status_code=204)


@router.get("/me")
async def who_am_i(actor: CurrentActor) -> dict[str, object]:
    """Who the hub takes the caller for: kind, name, role and teams."""
    return {
        "kind": actor.kind,
        "name": actor.name,
        "role": actor.role.value,
        "team": actor.team,
        "teams": sorted(actor.teams),
    }


@router.get("/sessions", response_model=list[WebSessionPublic])
def sessions(admin: AdminActor, session: SessionDep, page: PageDep) -> list[WebSessionPublic]:
    """Every session still valid, newest first (admins). Paged."""
    return page.of(list_web_sessions(session=session))


@router.delete("/sessions/{session_id}", status_code=204)
def revoke_session(session_id: RowId, admin: AdminActor, session: SessionDep) -> Response:
    """End someone's session at once, in the hub and the chat (admins)."""
    if not end_web_session_by_id(session=session, session_id=session_id, actor=admin):
        raise NotFoundError(f"No session {session_id}.")
    return Response(status_code=204)
