"""Chainlit's own routes for sharing a conversation and rating a message, under Switchboard's
rules.

- Sharing goes through the hub's share links (audience, expiry, revocation): Chainlit's
  thread sharing is closed. Its endpoints answer whatever `features.allow_thread_sharing`
  says, and `GET /project/share/{id}` asks for no sign-in at all.
- Feedback on a message is for the person whose conversation holds it. Chainlit's
  `PUT /feedback` and `DELETE /feedback` check nobody (and the data layer they call has no
  Chainlit context to tell who asks), so these routes check first, then hand over to
  Chainlit's own.

The routes go first, ahead of Chainlit's.
"""

from typing import Annotated

from chainlit import server as chainlit_server
from chainlit.auth import get_current_user
from chainlit.data import get_data_layer
from chainlit.types import DeleteFeedbackRequest, UpdateFeedbackRequest
from chainlit.user import PersistedUser, User
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from starlette.responses import Response

from app.data_layer import SwitchboardDataLayer

__all__ = ["add_chainlit_routes"]

_CurrentUser = Annotated[User | PersistedUser | None, Depends(get_current_user)]
_NOT_YOURS = "No such message, or it is not in one of your conversations."
_SHARING_CLOSED = (
    "Conversations are shared with Switchboard's share links: use Share in the message box."
)


def _data_layer() -> SwitchboardDataLayer:
    layer = get_data_layer()
    if not isinstance(layer, SwitchboardDataLayer):
        raise HTTPException(503, "The chat keeps no conversations here.")
    return layer


def add_chainlit_routes(app: FastAPI) -> None:
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
            owner = await layer.owner_of_feedback(update.feedback.id)
            if owner is not None and owner != current_user.identifier:
                raise HTTPException(404, _NOT_YOURS)
        update.feedback.threadId = step[0]
        answer: Response = await chainlit_server.update_feedback(request, update, current_user)
        return answer

    @router.delete("/feedback")
    async def delete_feedback(
        request: Request, payload: DeleteFeedbackRequest, current_user: _CurrentUser
    ) -> Response:
        owner = await _data_layer().owner_of_feedback(payload.feedbackId)
        if current_user is None or owner is None or owner != current_user.identifier:
            raise HTTPException(404, _NOT_YOURS)
        answer: Response = await chainlit_server.delete_feedback(request, payload, current_user)
        return answer

    app.include_router(router)
    added = app.router.routes.pop()
    app.router.routes.insert(0, added)
