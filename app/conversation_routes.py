"""Export and import of one's conversations, in the chat app:

- `GET /switchboard/conversations`: the page: one's conversations with their export links,
  exporting them all, and the import form;
- `GET /switchboard/conversations/{id}/export?format=md|json|pdf`: one conversation, for its
  owner alone (anyone else is told there is no such conversation);
- `GET /switchboard/conversations/export?format=md|json|pdf`: all of one's conversations in
  one file;
- `POST /switchboard/conversations/import` (multipart, field `file`): a ChatGPT or Claude export
  or this chat's JSON export becomes conversations of one's own; the page comes back with the
  report (`?format=json`: the report as JSON).

The routes go first, ahead of Chainlit's, which answers every other GET path with its page.
"""

import html
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio
from chainlit.auth import get_current_user
from chainlit.data import get_data_layer
from chainlit.types import ThreadDict
from chainlit.user import PersistedUser, User
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from sqlalchemy import text
from starlette.datastructures import UploadFile
from starlette.responses import HTMLResponse, JSONResponse, Response

from app.conversation_export import conversation_of, export_json, export_markdown
from app.conversation_format import ExportedConversation
from app.conversation_import import (
    ImportRefused,
    ImportReport,
    parse_import,
    store_import,
)
from app.conversation_pdf import export_pdf
from app.data_layer import SwitchboardDataLayer
from app.file_store import LocalFileStore

__all__ = ["CONVERSATIONS_ROUTE", "add_conversation_routes"]

CONVERSATIONS_ROUTE = "/switchboard/conversations"
_LISTED = 500
_Format = Literal["md", "json", "pdf"]
_CurrentUser = Annotated[User | PersistedUser | None, Depends(get_current_user)]
_MEDIA = {
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
    "pdf": "application/pdf",
}
_NOT_FILENAME = re.compile(r"[^\w.-]+")
# Room for the multipart envelope around the file.
_ENVELOPE = 64 * 1024


def _layer() -> SwitchboardDataLayer:
    layer = get_data_layer()
    if not isinstance(layer, SwitchboardDataLayer):
        raise HTTPException(503, "The chat keeps no conversations here.")
    return layer


def _person(user: User | PersistedUser | None) -> User | PersistedUser:
    if user is None:
        raise HTTPException(401, "Sign in to the chat to export or import your conversations.")
    return user


def _rendered(conversations: Sequence[ExportedConversation], kind: _Format) -> bytes:
    if kind == "json":
        body = export_json(conversations)
    elif kind == "md":
        body = export_markdown(conversations).encode()
    else:
        body = export_pdf(conversations)
    return body


async def _download(
    conversations: Sequence[ExportedConversation], kind: _Format, name: str
) -> Response:
    # Off the event loop: a long PDF takes a while to draw, and other chats go on meanwhile.
    body = await anyio.to_thread.run_sync(_rendered, conversations, kind)
    filename = (_NOT_FILENAME.sub("-", name).strip("-")[:80] or "conversation") + f".{kind}"
    return Response(
        body,
        media_type=_MEDIA[kind],
        headers={
            "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''"
            + quote(filename),
            "Cache-Control": "no-store",
        },
    )


async def _listed(layer: SwitchboardDataLayer, owner: str) -> list[dict[str, Any]]:
    statement = text(
        'SELECT id, name, "createdAt" AS created_at FROM threads '
        'WHERE "userIdentifier" = :owner ORDER BY "createdAt" DESC LIMIT :limit'
    )
    async with layer.engine.connect() as connection:
        rows = await connection.execute(statement, {"owner": owner, "limit": _LISTED})
        return [dict(row._mapping) for row in rows]


_STYLE = (
    "body{font:15px system-ui,sans-serif;margin:2rem auto;max-width:52rem;padding:0 1rem;"
    "color:#0f172a}table{border-collapse:collapse;width:100%}td{padding:.3rem .4rem;"
    "border-bottom:1px solid #e2e8f0}.when{color:#64748b;font-size:12px}a{margin-right:.5rem}"
    ".error{color:#b91c1c}section{margin:1.5rem 0}#report li{margin:.2rem 0}"
)


def _export_links(path: str) -> str:
    return "".join(
        f"<a href='{html.escape(path, quote=True)}?format={kind}' download>{label}</a>"
        for kind, label in (("md", "Markdown"), ("json", "JSON"), ("pdf", "PDF"))
    )


def _report_html(report: ImportReport | None, error: str | None) -> str:
    if error is not None:
        return f"<section id='report'><p class='error'>{html.escape(error)}</p></section>"
    if report is None:
        return ""
    items = []
    for title, messages, left_out in report.imported:
        note = f" — left out: {html.escape('; '.join(left_out))}" if left_out else ""
        items.append(f"<li class='imported'>{html.escape(title)} ({messages} messages){note}</li>")
    for title, reason in report.refused:
        items.append(
            f"<li class='refused'>Not imported: {html.escape(title)} — {html.escape(reason)}</li>"
        )
    return (
        f"<section id='report'><h2>Imported from {html.escape(report.source)}</h2>"
        f"<p>{len(report.imported)} conversations imported, {len(report.refused)} not.</p>"
        f"<ul>{''.join(items)}</ul></section>"
    )


def _page(
    threads: list[dict[str, Any]],
    report: ImportReport | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    rows = "".join(
        f"<tr class='conversation'><td><a href='/thread/{quote(str(row['id']), safe='')}'>"
        f"{html.escape(str(row['name'] or 'Untitled conversation'))}</a> "
        f"<span class='when'>{html.escape(str(row['created_at'] or '')[:16].replace('T', ' '))}"
        "</span></td><td>"
        + _export_links(f"{CONVERSATIONS_ROUTE}/{quote(str(row['id']), safe='')}/export")
        + "</td></tr>"
        for row in threads
    )
    listing = (
        f"<table id='conversations'>{rows}</table>" if rows else "<p>No conversations yet.</p>"
    )
    page = (
        "<!doctype html><html lang='en'><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<title>Export and import conversations · Switchboard</title>"
        f"<style>{_STYLE}</style><body><p><a href='/'>← Back to the chat</a></p>"
        "<h1>Your conversations</h1>"
        + _report_html(report, error)
        + "<section><h2>Import</h2><p>A ChatGPT or Claude export (<code>conversations.json</code>"
        " or the zip it comes in), or a JSON export of this chat.</p>"
        f"<form method='post' action='{CONVERSATIONS_ROUTE}/import' "
        "enctype='multipart/form-data'><input type='file' name='file' required "
        "accept='.json,.zip,application/json,application/zip'> "
        "<button type='submit'>Import</button></form></section>"
        "<section><h2>Export</h2><p id='export-all'>All of them: "
        + _export_links(f"{CONVERSATIONS_ROUTE}/export")
        + f"</p>{listing}</section></body></html>"
    )
    # "no-referrer" would make the browser send the form with `Origin: null`, which the
    # chat refuses as cross-site.
    return HTMLResponse(page, status_code=status, headers={"Referrer-Policy": "same-origin"})


async def _upload(request: Request, max_bytes: int) -> bytes:
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        # Without it the upload's size is known only once it has all been spooled to disk.
        raise ImportRefused("Send the file with its length (Content-Length).", 411)
    if int(length) > max_bytes + _ENVELOPE:
        raise ImportRefused(f"The file is over {max_bytes:,} bytes, the most an import takes.", 413)
    try:
        form = await request.form(max_files=1, max_fields=5)
    except Exception as error:  # Starlette's MultiPartException and parser errors
        raise ImportRefused(f"The upload could not be read: {error}") from error
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ImportRefused("Choose a file to import.")
    data = await upload.read(max_bytes + 1)
    await upload.close()
    if len(data) > max_bytes:
        raise ImportRefused(f"The file is over {max_bytes:,} bytes, the most an import takes.", 413)
    return data


def add_conversation_routes(
    app: FastAPI, *, files: Callable[[], LocalFileStore], max_import_bytes: Callable[[], int]
) -> None:
    router = APIRouter()

    @router.get(CONVERSATIONS_ROUTE)
    async def conversations_page(current_user: _CurrentUser) -> HTMLResponse:
        person = _person(current_user)
        return _page(await _listed(_layer(), person.identifier))

    @router.get(CONVERSATIONS_ROUTE + "/export")
    async def export_all(current_user: _CurrentUser, format: _Format = "json") -> Response:
        person = _person(current_user)
        layer = _layer()
        owner = await layer.get_user(person.identifier)
        threads = await layer.get_all_user_threads(user_id=owner.id) if owner else []
        mine: list[ThreadDict] = [
            thread for thread in threads or [] if thread.get("userIdentifier") == person.identifier
        ]
        mine.sort(key=lambda thread: str(thread.get("createdAt") or ""))
        exported = [conversation_of(thread, files()) for thread in mine]
        day = datetime.now(UTC).date().isoformat()
        return await _download(exported, format, f"conversations-{day}")

    @router.get(CONVERSATIONS_ROUTE + "/{thread_id}/export")
    async def export_one(
        thread_id: str, current_user: _CurrentUser, format: _Format = "json"
    ) -> Response:
        person = _person(current_user)
        thread = await _layer().get_thread(thread_id)
        if thread is None or thread.get("userIdentifier") != person.identifier:
            raise HTTPException(404, "No such conversation, or it is not yours.")
        exported = conversation_of(thread, files())
        return await _download([exported], format, exported.title or "conversation")

    @router.post(CONVERSATIONS_ROUTE + "/import")
    async def import_file(
        request: Request, current_user: _CurrentUser, format: Literal["html", "json"] = "html"
    ) -> Response:
        person = _person(current_user)
        layer = _layer()
        owner = await layer.get_user(person.identifier)
        if owner is None:
            raise HTTPException(401, "Open the chat once before importing conversations.")
        limit = max_import_bytes()
        try:
            data = await _upload(request, limit)
            parsed = await anyio.to_thread.run_sync(partial(parse_import, data, max_bytes=limit))
            if not parsed.conversations:
                raise ImportRefused(
                    "Nothing in the file could be imported: "
                    + "; ".join(f"{title}: {why}" for title, why in parsed.report.refused[:5])
                )
        except ImportRefused as error:
            status = error.status
            if format == "json":
                return JSONResponse({"detail": str(error)}, status_code=status)
            threads = await _listed(layer, person.identifier)
            return _page(threads, error=f"Nothing imported. {error}", status=status)
        name = str((person.metadata or {}).get("username") or person.identifier)
        ids = await store_import(
            layer.engine, parsed, user_id=owner.id, identifier=person.identifier, person=name
        )
        report = parsed.report
        if format == "json":
            return JSONResponse(
                {
                    "source": report.source,
                    "imported": [
                        {"id": new_id, "title": title, "messages": count, "left_out": left}
                        for new_id, (title, count, left) in zip(ids, report.imported, strict=True)
                    ],
                    "refused": [{"title": title, "reason": why} for title, why in report.refused],
                }
            )
        return _page(await _listed(layer, person.identifier), report=report)

    app.include_router(router)
    added = app.router.routes.pop()
    app.router.routes.insert(0, added)
