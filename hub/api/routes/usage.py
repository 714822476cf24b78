"""Usage and cost per service, team and model, for the platform team."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from hub.api.deps import AdminService, HubStateDep, SessionDep
from hub.gateway.errors import GatewayError
from hub.models.usage import UsageSummaryRow
from hub.services.usage import GroupKey, summarize_usage

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["usage"])


class UsageReport(BaseModel):
    start: datetime | None
    end: datetime | None
    group_by: list[GroupKey]
    rows: list[UsageSummaryRow]


@router.get("/usage", response_model=UsageReport)
async def get_usage(
    admin: AdminService,
    session: SessionDep,
    hub_state: HubStateDep,
    start: datetime | None = None,
    end: datetime | None = None,
    group_by: Annotated[list[GroupKey] | None, Query()] = None,
    prompt: Annotated[str | None, Query(max_length=63)] = None,
) -> UsageReport:
    """Requests, errors, tokens and cost by `group_by` (service, team and model when left
    out), between `start` and `end`; with `prompt`, only the calls that served that prompt."""
    if start and end and start >= end:
        raise GatewayError(400, "'start' must be before 'end'.", param="start")
    keys: list[GroupKey] = list(dict.fromkeys(group_by or ["service", "team", "model"]))
    # Records still queued in memory belong in the answer too.
    await hub_state.recorder.flush()
    rows = summarize_usage(session=session, start=start, end=end, group_by=keys, prompt=prompt)
    return UsageReport(start=start, end=end, group_by=keys, rows=rows)
