"""Files attached in the message box are checked as they upload, before anything is sent: a file
the chat cannot use (empty, over the size limit, damaged, of a kind it does not read, an image
for a model that takes none) is refused at once, and the message box says why ("Failed to
upload <name>: <why>"); nothing of it is kept. A file that can be used is handed to Chainlit's
own upload, and a note says what it is worth in tokens and how much room the model has.

The same checks run again when the message is sent (app/attaching.py): they are what decides.
"""

from collections.abc import Callable
from typing import Annotated

import anyio
import chainlit as cl
from chainlit.auth import get_current_user
from chainlit.context import init_ws_context
from chainlit.server import upload_file as chainlit_upload
from chainlit.session import WebsocketSession
from chainlit.user import PersistedUser, User
from fastapi import APIRouter, Depends, FastAPI, HTTPException, UploadFile
from fastapi.responses import JSONResponse

from agents.hub_client import HubClient, HubError
from app.attaching import describe, image_refusal, room_for
from app.attachments import AttachmentRefused, Picture, format_size, read_attachment
from app.history import to_openai_messages
from app.turns import parse_profile

__all__ = ["UPLOAD_ROUTE", "add_upload_route"]

UPLOAD_ROUTE = "/project/file"
# The key under which the chat keeps the conversation's model (app/main.py).
_MODEL_KEY = "model"


def add_upload_route(
    app: FastAPI, *, hub: Callable[[], HubClient], max_bytes: Callable[[], int]
) -> None:
    """Check each file attached in the message box, ahead of Chainlit's own upload route."""
    router = APIRouter()

    @router.post(UPLOAD_ROUTE)
    async def checked_upload(
        current_user: Annotated[User | PersistedUser | None, Depends(get_current_user)],
        session_id: str,
        file: UploadFile,
        ask_parent_id: str | None = None,
    ) -> JSONResponse:
        session = WebsocketSession.get_by_id(session_id)
        owned = (
            session is not None
            and current_user is not None
            and session.user is not None
            and session.user.identifier == current_user.identifier
        )
        if ask_parent_id is None and owned and session is not None:
            await _check(session, file, hub(), max_bytes())
        # Chainlit answers for the session (not found, not yours) as it always does.
        response = await chainlit_upload(
            current_user=current_user,
            session_id=session_id,
            file=file,
            ask_parent_id=ask_parent_id,
        )
        assert isinstance(response, JSONResponse)
        return response

    app.include_router(router)
    added = app.router.routes.pop()
    app.router.routes.insert(0, added)


async def _check(session: WebsocketSession, file: UploadFile, hub: HubClient, limit: int) -> None:
    name = file.filename or "file"
    if file.size is not None and file.size > limit:
        raise HTTPException(
            400,
            f"{name} is {format_size(file.size)}; files of at most {format_size(limit)} "
            "can be attached.",
        )
    data = await file.read()
    await file.seek(0)
    try:
        read = await anyio.to_thread.run_sync(lambda: read_attachment(name, data, max_bytes=limit))
    except AttachmentRefused as refusal:
        raise HTTPException(400, str(refusal)) from refusal
    init_ws_context(session)
    profile = cl.user_session.get(_MODEL_KEY)
    if profile is None or parse_profile(str(profile)) is not None:
        # An agent's model is known when its turn starts; the note then says the rest.
        await cl.context.emitter.send_toast(describe(read), "info")
        return
    try:
        models = await hub.list_models()
    except HubError:
        await cl.context.emitter.send_toast(describe(read), "info")
        return
    model = next((entry for entry in models if entry.id == str(profile)), None)
    if model is None:
        await cl.context.emitter.send_toast(describe(read), "info")
        return
    if isinstance(read, Picture) and not model.image_input:
        raise HTTPException(400, image_refusal(model, models, [name]))
    room = room_for(model, None, to_openai_messages(cl.chat_context.get()))
    if room is None:
        note = f"{describe(read)}; {model.id} gets all of it."
    elif read.tokens <= room:
        note = f"{describe(read)}; {model.id} has room for {room:,} tokens, so it gets all of it."
    else:
        note = (
            f"{describe(read)}; {model.id} has room for {max(room, 0):,} tokens only. On "
            "sending, the chat offers what fits."
        )
    await cl.context.emitter.send_toast(
        note, "info" if room is None or read.tokens <= room else "warning"
    )
