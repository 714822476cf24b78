"""Admins' page of the audit log: who changed what, and when, filtered by each."""

from typing import Any
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlmodel import Session
from starlette.responses import Response

from hub.api.deps import HubStateDep, OptionalActor
from hub.core.roles import Permission
from hub.models.audit import ACTIONS, AuditEventPublic, AuditFilter
from hub.services.audit import list_events
from hub.web.pages import page, problems, to_login

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_PAGE_SIZE = 100
_FIELDS = ("actor", "action", "since", "until", "limit", "offset")


@router.get("/audit")
async def audit_page(request: Request, actor: OptionalActor, hub_state: HubStateDep) -> Response:
    if actor is None:
        return to_login(request)
    form = {name: request.query_params.get(name, "") for name in _FIELDS}
    context: dict[str, Any] = {
        "actor": actor,
        "form": form,
        "actions": ACTIONS,
        "events": [],
        "older": None,
    }
    if not actor.may(Permission.administer):
        return page(
            request, "audit.html", status=403, error="Only admins see the audit log.", **context
        )
    try:
        filters = AuditFilter.model_validate(
            {**form, "limit": form["limit"] or _PAGE_SIZE, "offset": form["offset"] or 0}
        )
    except ValidationError as error:
        return page(request, "audit.html", status=400, error=problems(error), **context)

    def load() -> list[AuditEventPublic]:
        with Session(hub_state.engine) as session:
            return [
                AuditEventPublic.model_validate(event, from_attributes=True)
                for event in list_events(session=session, **filters.model_dump())
            ]

    events = await anyio.to_thread.run_sync(load)
    older = None
    if len(events) == filters.limit:
        older = "/audit?" + urlencode({**form, "offset": filters.offset + filters.limit})
    return page(request, "audit.html", error=None, **{**context, "events": events, "older": older})
