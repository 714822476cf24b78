"""Chainlit's own routes for sharing a conversation and rating a message, under Switchboard's
rules.

- Sharing goes through the hub's share links (audience, expiry, revocation): Chainlit's
  thread sharing is closed. Its endpoints answer whatever `features.allow_thread_sharing`
  says, and `GET /project/share/{id}` asks for no sign-in at all.
- Feedback on a message is for the person whose conversation holds it. Chainlit's
  `PUT /feedback` and `DELETE /feedback` check nobody (and the data layer they call has no
  Chainlit context to tell who asks), so these routes check first, then hand over to
  Chainlit's own. Once Chainlit has stored (or removed) it, the feedback goes to the hub with
  what gave the answer (model, or agent, version and trace), where agents' owners read it.
  The hub refusing is logged and the person keeps their thumbs in the chat; only Chainlit
  failing to store it is an error for them (502).

The routes go first, ahead of Chainlit's.
"""

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

from chainlit import server as chainlit_server
from chainlit.auth import get_current_user
from chainlit.data import get_data_layer
from chainlit.types import DeleteFeedbackRequest, UpdateFeedbackRequest
from chainlit.user import PersistedUser, User
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from starlette.responses import Response

from agents.hub_client import HubClient, HubError
from app.data_layer import StoredFeedback, SwitchboardDataLayer
from hub.api.contract import MAX_COMMENT

__all__ = ["add_chainlit_routes", "hub_username"]

logger = logging.getLogger(__name__)

_CurrentUser = Annotated[User | PersistedUser | None, Depends(get_current_user)]
_NOT_YOURS = "No such message, or it is not in one of your conversations."
_NOT_STORED = "The chat could not store your feedback just now; try again in a moment."
_NOT_REMOVED = "The chat could not remove your feedback just now; try again in a moment."
_SHARING_CLOSED = (
    "Conversations are shared with Switchboard's share links: use Share in the message box."
)


def _data_layer() -> SwitchboardDataLayer:
    layer = get_data_layer()
    if not isinstance(layer, SwitchboardDataLayer):
        raise HTTPException(503, "The chat keeps no conversations here.")
    return layer


def hub_username(user: User | PersistedUser) -> str | None:
    """The hub's name for the person (the chat knows them by their key)."""
    name = (user.metadata or {}).get("username")
    return str(name) if name else None


async def _chainlits_own(handler: Any, *args: Any, failed: str) -> Response:
    """Chainlit's handler; its failure is the person's error (`failed`), without its
    internals."""
    try:
        answer: Response = await handler(*args)
    except HTTPException as error:
        logger.error("Chainlit's feedback handler failed: %s", error.detail)
        raise HTTPException(502, failed) from error
    return answer


def _hub_body(
    stored: StoredFeedback, thread_id: str, message_id: str, meta: dict[str, Any]
) -> dict[str, Any]:
    return {
        "conversation_id": thread_id,
        "message_id": message_id,
        "value": 1 if stored.value else -1,
        "comment": stored.comment,
        "model": str(meta.get("answered_by") or meta.get("model") or ""),
        "agent_slug": meta.get("agent"),
        "agent_version": meta.get("version"),
        "trace_id": meta.get("trace"),
    }


async def _send_to_hub(
    hub: HubClient, layer: SwitchboardDataLayer, user: User | PersistedUser, stored: StoredFeedback
) -> None:
    """The feedback Chainlit stored, to the hub with what gave the answer it rates."""
    rated = await layer.rated_answer(stored.for_id)
    name = hub_username(user)
    meta = rated.metadata if rated is not None else {}
    # An answer copied from a share was given in someone else's conversation: nobody to credit.
    if rated is None or name is None or not (meta.get("model") or meta.get("agent")):
        logger.info("feedback on step %s rates no answer; kept in the chat", stored.for_id)
        return
    body = _hub_body(stored, rated.thread_id, rated.message_id, rated.metadata)
    try:
        await hub.record_feedback(user=name, body=body)
    except HubError as error:
        logger.warning("the hub did not take the feedback on %s: %s", rated.message_id, error)


async def _take_back_at_hub(
    hub: HubClient, layer: SwitchboardDataLayer, user: User | PersistedUser, stored: StoredFeedback
) -> None:
    rated = await layer.rated_answer(stored.for_id)
    name = hub_username(user)
    if rated is None or name is None:
        return
    try:
        await hub.delete_feedback(user=name, message_id=rated.message_id)
    except HubError as error:
        logger.warning("the hub kept the feedback on %s: %s", rated.message_id, error)


def add_chainlit_routes(app: FastAPI, hub: Callable[[], HubClient]) -> None:
    router = APIRouter()

    @router.get("/project/share/{thread_id}")
    async def shared_thread(thread_id: str) -> Response:
        raise HTTPException(404, "Not found. " + _SHARING_CLOSED)

    @router.put("/project/thread/share")
    async def share_thread() -> Response:
        raise HTTPException(403, _SHARING_CLOSED)

    @router.put("/feedback")
    async def update_feedback(
        request: Request, update: UpdateFeedbackRequest, current_user: _CurrentUser
    ) -> Response:
        layer = _data_layer()
        step = await layer.thread_of_step(update.feedback.forId)
        if current_user is None or step is None or step[1] != current_user.identifier:
            raise HTTPException(404, _NOT_YOURS)
        if update.feedback.id is not None:
            # An existing feedback is overwritten by its id: it must be this person's too.
            earlier = await layer.stored_feedback(update.feedback.id)
            if earlier is not None and earlier.owner != current_user.identifier:
                raise HTTPException(404, _NOT_YOURS)
        comment = update.feedback.comment or ""
        if len(comment) > MAX_COMMENT:
            raise HTTPException(
                422,
                f"A comment is at most {MAX_COMMENT:,} characters; this one has "
                f"{len(comment):,}. Shorten it and send it again.",
            )
        update.feedback.threadId = step[0]
        answer = await _chainlits_own(
            chainlit_server.update_feedback, request, update, current_user, failed=_NOT_STORED
        )
        feedback_id = json.loads(bytes(answer.body)).get("feedbackId")
        stored = await layer.stored_feedback(str(feedback_id)) if feedback_id else None
        if stored is None:
            logger.error("Chainlit did not store the feedback on step %s", update.feedback.forId)
            raise HTTPException(502, _NOT_STORED)
        await _send_to_hub(hub(), layer, current_user, stored)
        return answer

    @router.delete("/feedback")
    async def delete_feedback(
        request: Request, payload: DeleteFeedbackRequest, current_user: _CurrentUser
    ) -> Response:
        layer = _data_layer()
        stored = await layer.stored_feedback(payload.feedbackId)
        if current_user is None or stored is None or stored.owner != current_user.identifier:
            raise HTTPException(404, _NOT_YOURS)
        answer = await _chainlits_own(
            chainlit_server.delete_feedback, request, payload, current_user, failed=_NOT_REMOVED
        )
        if await layer.stored_feedback(payload.feedbackId) is not None:
            logger.error("Chainlit did not remove the feedback %s", payload.feedbackId)
            raise HTTPException(502, _NOT_REMOVED)
        await _take_back_at_hub(hub(), layer, current_user, stored)
        return answer

    app.include_router(router)
    added = app.router.routes.pop()
    app.router.routes.insert(0, added)
