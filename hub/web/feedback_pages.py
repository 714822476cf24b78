"""The admins' export of every feedback on answers, one row each (per agent and version, its
owner reads it on the agent's page)."""

from datetime import UTC, datetime

import anyio
from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import Response

from hub.api.deps import HubStateDep, OptionalActor
from hub.models.feedback import Feedback
from hub.services.feedback import all_feedback
from hub.web.csv_export import csv_download
from hub.web.pages import to_login

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_HEADER = (
    "when",
    "person",
    "conversation",
    "message",
    "value",
    "comment",
    "model",
    "agent",
    "version",
    "trace",
)


def _cells(feedback: Feedback) -> list[object]:
    return [
        feedback.updated_at.isoformat(),
        feedback.person_name,
        feedback.conversation_id,
        feedback.message_id,
        feedback.value,
        feedback.comment,
        feedback.model,
        feedback.agent_slug or "",
        "" if feedback.agent_version is None else feedback.agent_version,
        feedback.trace_id or "",
    ]


@router.get("/feedback.csv")
async def feedback_csv(request: Request, actor: OptionalActor, hub_state: HubStateDep) -> Response:
    if actor is None:
        return to_login(request)
    if not actor.is_admin:
        return Response("Only admins export feedback.\n", status_code=403, media_type="text/plain")

    def load() -> list[list[object]]:
        with Session(hub_state.engine) as session:
            return [_cells(feedback) for feedback in all_feedback(session=session)]

    rows = await anyio.to_thread.run_sync(load)
    filename = f"switchboard-feedback-{datetime.now(UTC):%Y-%m-%d}.csv"
    return csv_download(filename, _HEADER, rows)
