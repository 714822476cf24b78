"""Sharing a conversation by link, from the chat: the Share command in the message box takes a
snapshot of the conversation as it is (messages, tool calls, tables, charts) and the hub keeps
it behind a link; "continue from a copy" turns someone's snapshot into a conversation of one's
own.

The snapshot is read here, where the conversation and its files are, and sent to the hub in
the hub's own typed shape (hub/api/contract.py).
"""

import html
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import chainlit as cl
import orjson
from chainlit.auth import create_jwt
from chainlit.auth.cookie import set_auth_cookie
from chainlit.context import init_http_context
from chainlit.data import get_data_layer
from chainlit.types import CommandDict, ThreadDict
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from agents.hub_client import HubClient, HubRefusedError
from app.attachments import shared_text
from app.file_store import LocalFileStore
from app.history import REPLY_MARKER, metadata_of
from app.sign_in import HubSessions
from app.turns import TRACE_LINK
from hub.api.contract import (
    ShareAudience,
    ShareCreate,
    Snapshot,
    SnapshotElement,
    SnapshotStep,
    TraceDetail,
)
from hub.identity.cookies import SESSION_COOKIE

__all__ = [
    "SHARE_COMMAND",
    "add_continue_route",
    "copy_steps",
    "share_body",
    "share_command",
    "share_request",
    "snapshot_of",
]

SHARE_COMMAND = "Share"
_KINDS: dict[str, Literal["user", "assistant", "tool"]] = {
    "user_message": "user",
    "assistant_message": "assistant",
    "tool": "tool",
}
# A small text file (a query's CSV) is kept in the snapshot; a larger one is only named.
_MAX_FILE_TEXT = 100_000
# A reply's link to its run's trace: the trace is not part of the share.
_TRACE_LINE = re.compile(r"\n*\[" + re.escape(TRACE_LINK) + r"\]\([^)]*\)")
_DAYS = re.compile(r"(\d{1,3})\s*d(?:ays?)?\b", re.IGNORECASE)


def share_command() -> CommandDict:
    """The Share button in the message box (Chainlit's command)."""
    return {
        "id": SHARE_COMMAND,
        "icon": "share-2",
        "description": "Share this conversation by link. Add 'team' for your team only, a "
        "number of days ('7 days'; 30 unless said), 'trace' to include the agent's trace "
        "('trace redacted' without what went in and out of each step).",
        "button": True,
        "persistent": False,
        "selected": False,
    }


def share_request(text: str) -> tuple[ShareAudience, int, TraceDetail]:
    """Who a link is for, for how many days, and how much of the agent's traces it shows, from
    what the person wrote with the command."""
    audience = ShareAudience.team if re.search(r"\bteam\b", text, re.I) else ShareAudience.company
    found = _DAYS.search(text)
    days = min(max(int(found.group(1)), 1), 365) if found else 30
    trace = TraceDetail.none
    if re.search(r"\btraces?\b", text, re.I):
        hidden = re.search(r"\b(redacted|hidden|hide)\b", text, re.I)
        trace = TraceDetail.redacted if hidden else TraceDetail.full
    return audience, days, trace


_ELEMENT_KINDS: dict[str, Literal["table", "chart", "file"]] = {
    "dataframe": "table",
    "plotly": "chart",
    "file": "file",
    # Files attached to a person's message: a PDF and an image are shown by Chainlit as such.
    "pdf": "file",
    "image": "file",
}


def _element(element: Mapping[str, Any], files: LocalFileStore) -> SnapshotElement | None:
    kind = _ELEMENT_KINDS.get(str(element.get("type")))
    key = element.get("objectKey")
    if kind is None:
        return None
    name = str(element.get("name") or kind)[:200]
    mime = str(element.get("mime") or "")[:100] or None
    try:
        content = files.path_of(str(key)).read_bytes() if key else b""
    except (ValueError, OSError):
        content = b""
    if kind == "file":
        text = shared_text(name, mime, content, limit=_MAX_FILE_TEXT) if content else None
        return SnapshotElement(kind="file", name=name, mime=mime, text=text)
    try:
        data = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        data = None
    if kind == "table" and isinstance(data, dict):
        data = {"columns": data.get("columns", []), "data": data.get("data", [])}
    return SnapshotElement(kind=kind, name=name, data=data, mime=mime)


def _answered_by(metadata: Mapping[str, Any]) -> str:
    if agent := metadata.get("agent"):
        version = metadata.get("version")
        return f"agent {agent}" + (f" v{version}" if version else " (draft)")
    return str(metadata.get("model") or "")


def snapshot_of(
    thread: ThreadDict, *, files: LocalFileStore, person: str, profile: str
) -> Snapshot:
    """The conversation as it is now: messages and tool calls in order, with their tables,
    charts and small files; `person` names the owner's own messages."""
    elements: dict[str, list[SnapshotElement]] = {}
    for element in thread.get("elements") or []:
        shown: Mapping[str, Any] = dict(element)
        if (for_id := shown.get("forId")) and (found := _element(shown, files)) is not None:
            elements.setdefault(str(for_id), []).append(found)
    steps: list[SnapshotStep] = []
    answered_by = ""
    for step in sorted(thread.get("steps") or [], key=lambda s: str(s.get("createdAt") or "")):
        item: Mapping[str, Any] = dict(step)
        kind = _KINDS.get(str(item.get("type")))
        if kind is None or item.get("command") == SHARE_COMMAND:
            continue
        metadata = metadata_of(item.get("metadata"))
        if kind == "assistant" and metadata.get(REPLY_MARKER):
            answered_by = _answered_by(metadata) or answered_by
        text = _TRACE_LINE.sub("", str(item.get("output") or ""))
        attached = elements.get(str(item.get("id")), [])
        if not text and not attached and kind != "tool":
            continue
        steps.append(
            SnapshotStep(
                kind=kind,
                author=person if kind == "user" else str(item.get("name") or "")[:200],
                text=text,
                input=str(item.get("input") or "") if kind == "tool" else "",
                is_error=bool(item.get("isError")),
                created_at=str(item.get("createdAt") or "")[:40] or None,
                elements=attached[:20],
            )
        )
    return Snapshot(answered_by=answered_by, profile=profile, steps=steps)


def share_body(
    thread: ThreadDict,
    snapshot: Snapshot,
    *,
    audience: ShareAudience,
    days: int,
    trace: TraceDetail = TraceDetail.none,
) -> dict[str, Any]:
    body = ShareCreate(
        thread_id=str(thread["id"]),
        title=str(thread.get("name") or "")[:200],
        audience=audience,
        expires_in_days=days,
        trace=trace,
        snapshot=snapshot,
    )
    return body.model_dump(mode="json")


def copy_steps(snapshot: Snapshot, *, thread_id: str) -> list[dict[str, Any]]:
    """The snapshot's messages and tool calls as new steps of the conversation `thread_id`, in
    Chainlit's shape; replies keep the marker that makes them history for the model."""
    start = datetime.now(UTC)
    steps: list[dict[str, Any]] = []
    for index, step in enumerate(snapshot.steps):
        # A millisecond apart, so they sort in the snapshot's order.
        created = (start + timedelta(milliseconds=index)).isoformat()
        common = {
            "id": str(uuid.uuid4()),
            "threadId": thread_id,
            "createdAt": created,
            "streaming": False,
        }
        text = step.text + "".join(
            f"\n\n[{element.kind}: {element.name}]" for element in step.elements
        )
        if step.kind == "tool":
            steps.append(
                {
                    **common,
                    "name": step.author,
                    "type": "tool",
                    "input": step.input,
                    "output": step.text,
                    "isError": step.is_error,
                    "showInput": "json",
                }
            )
        elif step.kind == "user":
            steps.append({**common, "name": step.author, "type": "user_message", "output": text})
        else:
            steps.append(
                {
                    **common,
                    "name": step.author,
                    "type": "assistant_message",
                    "output": text,
                    "metadata": {REPLY_MARKER: True, "copied": True},
                }
            )
    return steps


def tags_for(profile: str) -> Sequence[str]:
    return [profile] if profile else []


def _notice(status: int, message: str, chat_url: str) -> HTMLResponse:
    body = (
        "<!doctype html><meta charset='utf-8'><title>Shared conversation · Switchboard</title>"
        "<meta name='robots' content='noindex'><body style='font:15px system-ui;margin:3rem'>"
        f"<h1>Shared conversation</h1><p id='share-error'>{html.escape(message)}</p>"
        f"<p><a href='{html.escape(chat_url)}/'>Back to the chat</a></p></body>"
    )
    return HTMLResponse(body, status_code=status, headers={"Referrer-Policy": "no-referrer"})


def add_continue_route(
    app: FastAPI, *, sessions: HubSessions, hub: Callable[[], HubClient], chat_url: str
) -> None:
    """`GET /shares/{id}/continue`: a new conversation of the signed-in person's own, with the
    shared snapshot's messages, opened at once. The route goes first: Chainlit answers every
    other GET path with its page."""
    router = APIRouter()

    @router.get("/shares/{share_id}/continue")
    async def continue_from_copy(share_id: str, request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        person = await sessions.person(token) if token else None
        if person is None:
            # The sign-in gate sends a signed-out browser to sign in before it gets here.
            return _notice(401, "Sign in to open this shared conversation.", chat_url)
        try:
            shared = await hub().read_share(user=person.username, share_id=share_id)
        except HubRefusedError as error:
            return _notice(error.status, str(error), chat_url)
        snapshot = Snapshot.model_validate(shared["snapshot"])
        layer = get_data_layer()
        if layer is None:
            return _notice(503, "The chat keeps no conversations here.", chat_url)
        user = cl.User(
            identifier=person.key,
            display_name=person.display_name,
            metadata={"username": person.username, "role": person.role},
        )
        owner = await layer.get_user(person.key) or await layer.create_user(user)
        assert owner is not None
        init_http_context(user=owner)
        thread_id = str(uuid.uuid4())
        await layer.update_thread(
            thread_id,
            name=f"Copy of {shared.get('title') or 'a shared conversation'}"[:200],
            user_id=owner.id,
            metadata={"model": snapshot.profile, "copied_from": share_id}
            if snapshot.profile
            else {"copied_from": share_id},
            tags=list(tags_for(snapshot.profile)),
        )
        for step in copy_steps(snapshot, thread_id=thread_id):
            await layer.create_step(step)
        response = RedirectResponse(f"/thread/{thread_id}", status_code=303)
        # Signed in to the chat as header sign-in would, so the copy opens at once.
        set_auth_cookie(request, response, create_jwt(user))
        return response

    app.include_router(router)
    added = app.router.routes.pop()
    app.router.routes.insert(0, added)
