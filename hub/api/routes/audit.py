"""The audit log for admins: who changed what on the platform, and when. Read-only: no route
changes or deletes an event."""

from typing import Annotated

from fastapi import APIRouter, Query

from hub.api.deps import AdminActor, SessionDep
from hub.api.paging import PageDep
from hub.models.audit import AuditEventPublic, AuditSearch
from hub.services.audit import list_events

__all__ = ["router"]

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", response_model=list[AuditEventPublic])
def audit_events(
    admin: AdminActor,
    session: SessionDep,
    search: Annotated[AuditSearch, Query()],
    page: PageDep,
) -> list[AuditEventPublic]:
    """Events newest first, by who (`actor`: a name, a person's key or a service's id), what
    (`action`: one, or a family as `mcp_server.*`) and when (`since`, `until`: ISO 8601).
    Paged."""
    events = list_events(
        session=session, **search.model_dump(), offset=page.offset, limit=page.fetch
    )
    return [
        AuditEventPublic.model_validate(event, from_attributes=True)
        for event in page.answer(events)
    ]
