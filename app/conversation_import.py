"""Import conversations from a file: a ChatGPT export (`conversations.json`, or the zip it comes
in), a Claude export (the same), or this chat's own JSON export. They become conversations of
the person importing, written in one transaction: all of a file's conversations, or none.

What could not be imported (an image, a conversation with no text) is said in the report.
Imported answers are marked as the model's replies, so a conversation can go on from them;
an analyst's SQL, table and files are kept in the answer's metadata.
"""

import io
import json
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.conversation_format import (
    EXPORT_FORMAT,
    ExportedConversation,
    ExportedMessage,
)
from app.history import REPLY_MARKER

__all__ = [
    "ImportRefused",
    "ImportReport",
    "ParsedImport",
    "parse_import",
    "store_import",
]

SOURCES = {"chatgpt": "ChatGPT", "claude": "Claude", "switchboard": "Switchboard"}
_ZIP_MEMBER = "conversations.json"
_MAX_CONVERSATIONS = 5_000


class ImportRefused(ValueError):
    """Why a file cannot be imported at all, said to the person; `status` for HTTP."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class ImportReport:
    source: str
    # (title, messages imported, what of it was left out)
    imported: list[tuple[str, int, list[str]]] = field(default_factory=list)
    # (title, why it was not imported)
    refused: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class ParsedImport:
    conversations: list[ExportedConversation]
    report: ImportReport


def _text_of_zip(data: bytes, max_bytes: int) -> bytes:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise ImportRefused("The file is a damaged zip archive.") from error
    with archive:
        names = [name for name in archive.namelist() if name.rsplit("/", 1)[-1] == _ZIP_MEMBER]
        if not names:
            raise ImportRefused(f"The zip archive holds no {_ZIP_MEMBER}.")
        member = archive.getinfo(min(names, key=len))
        if member.file_size > max_bytes:
            raise ImportRefused(
                f"{_ZIP_MEMBER} in the archive is {member.file_size:,} bytes unpacked; "
                f"the most an import takes is {max_bytes:,}.",
                413,
            )
        try:
            with archive.open(member) as opened:
                content = opened.read(max_bytes + 1)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ImportRefused(f"{_ZIP_MEMBER} in the archive cannot be read.") from error
        if len(content) > max_bytes:
            raise ImportRefused(f"{_ZIP_MEMBER} in the archive is larger than it says.", 413)
        return content


def _when(value: Any) -> str | None:
    """An ISO 8601 time from epoch seconds (ChatGPT) or ISO text (Claude, ours)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()[:40]
        except ValueError:
            return None
    return None


def _chatgpt_path(mapping: Mapping[str, Any], current: Any) -> list[Mapping[str, Any]]:
    """The messages of the branch the person last saw, first to last."""
    if not isinstance(current, str) or current not in mapping:
        # No current node: the branch ending at the last node without children.
        leaves = [key for key, node in mapping.items() if not (node or {}).get("children")]
        current = leaves[-1] if leaves else None
    path: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    while isinstance(current, str) and current in mapping and current not in seen:
        seen.add(current)
        node = mapping[current]
        if not isinstance(node, dict):
            break
        if isinstance(node.get("message"), dict):
            path.append(node["message"])
        current = node.get("parent")
    return path[::-1]


def _chatgpt_conversation(item: Mapping[str, Any]) -> tuple[ExportedConversation, list[str]]:
    mapping = item.get("mapping")
    if not isinstance(mapping, dict):
        raise ValueError("it has no messages (no 'mapping')")
    left_out: list[str] = []
    messages: list[ExportedMessage] = []
    for message in _chatgpt_path(mapping, item.get("current_node")):
        author = message.get("author") or {}
        role = author.get("role") if isinstance(author, dict) else None
        content = message.get("content") or {}
        hidden = (message.get("metadata") or {}).get("is_visually_hidden_from_conversation")
        if role == "system" or hidden or not isinstance(content, dict):
            continue
        kind = {"user": "user", "assistant": "assistant", "tool": "tool"}.get(str(role))
        if kind is None:
            left_out.append(f"a message from {str(role)[:40]!r}")
            continue
        parts = content.get("parts")
        texts: list[str] = []
        if isinstance(parts, list):
            for part in parts:
                if isinstance(part, str):
                    texts.append(part)
                else:
                    kind_of_part = part.get("content_type") if isinstance(part, dict) else None
                    left_out.append(f"a {str(kind_of_part or 'non-text')[:40]} part")
        elif isinstance(content.get("text"), str):
            texts.append(content["text"])
        body = "\n\n".join(part for part in texts if part)
        if not body:
            continue
        name = author.get("name") if isinstance(author, dict) else None
        model = (message.get("metadata") or {}).get("model_slug")
        messages.append(
            ExportedMessage(
                kind=kind,  # type: ignore[arg-type]
                author=str(name or model or ("ChatGPT" if kind == "assistant" else ""))[:200],
                text=body,
                created_at=_when(message.get("create_time")),
            )
        )
    conversation = ExportedConversation(
        id=str(item.get("id") or item.get("conversation_id") or "")[:200],
        title=str(item.get("title") or "")[:1000],
        created_at=_when(item.get("create_time")),
        messages=messages,
    )
    return conversation, left_out


def _claude_conversation(item: Mapping[str, Any]) -> tuple[ExportedConversation, list[str]]:
    chat = item.get("chat_messages")
    if not isinstance(chat, list):
        raise ValueError("it has no messages (no 'chat_messages')")
    left_out: list[str] = []
    messages: list[ExportedMessage] = []
    for message in chat:
        if not isinstance(message, dict):
            continue
        kind = {"human": "user", "assistant": "assistant"}.get(str(message.get("sender")))
        if kind is None:
            left_out.append(f"a message from {str(message.get('sender'))[:40]!r}")
            continue
        texts: list[str] = []
        for part in message.get("content") or []:
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text") or ""))
            elif isinstance(part, dict):
                left_out.append(f"a {str(part.get('type') or 'non-text')[:40]} part")
        if not texts and isinstance(message.get("text"), str):
            texts.append(message["text"])
        for attached in (message.get("attachments") or []) + (message.get("files") or []):
            name = attached.get("file_name") if isinstance(attached, dict) else None
            left_out.append(f"the attached file {str(name or 'without a name')[:100]!r}")
        body = "\n\n".join(part for part in texts if part)
        if body:
            messages.append(
                ExportedMessage(
                    kind=kind,  # type: ignore[arg-type]
                    author="Claude" if kind == "assistant" else "",
                    text=body,
                    created_at=_when(message.get("created_at")),
                )
            )
    conversation = ExportedConversation(
        id=str(item.get("uuid") or "")[:200],
        title=str(item.get("name") or "")[:1000],
        created_at=_when(item.get("created_at")),
        messages=messages,
    )
    return conversation, left_out


def _source_of(document: Any) -> str:
    if isinstance(document, dict) and document.get("format") == EXPORT_FORMAT:
        return "switchboard"
    if isinstance(document, list) and document:
        first = next((item for item in document if isinstance(item, dict)), {})
        if "mapping" in first:
            return "chatgpt"
        if "chat_messages" in first:
            return "claude"
    if isinstance(document, list | dict) and not document:
        raise ImportRefused("The file holds no conversations.")
    raise ImportRefused(
        "This is not a format the chat imports: it takes a ChatGPT or Claude export "
        "(conversations.json, or the zip it comes in) or this chat's own JSON export."
    )


def _ours(document: dict[str, Any], report: ImportReport) -> list[ExportedConversation]:
    items = document.get("conversations")
    if document.get("version") != 1 or not isinstance(items, list):
        raise ImportRefused("This Switchboard export is of a version this chat does not read.")
    found = []
    for index, item in enumerate(items[:_MAX_CONVERSATIONS]):
        title = str(item.get("title") or "")[:200] if isinstance(item, dict) else ""
        try:
            found.append(ExportedConversation.model_validate(item))
        except ValidationError as error:
            reason = "; ".join(
                f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}"
                for problem in error.errors()[:3]
            )
            report.refused.append((title or f"conversation {index + 1}", reason))
    return found


def parse_import(data: bytes, *, max_bytes: int) -> ParsedImport:
    """The conversations in an import file, and what of it will not be imported."""
    if len(data) > max_bytes:
        raise ImportRefused(
            f"The file is {len(data):,} bytes; the most an import takes is {max_bytes:,}.", 413
        )
    if not data.strip():
        raise ImportRefused("The file is empty.")
    if data.startswith(b"PK"):
        data = _text_of_zip(data, max_bytes)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ImportRefused(f"The file is not valid JSON ({error}).") from error
    source = _source_of(document)
    report = ImportReport(source=SOURCES[source])
    if source == "switchboard":
        found = _ours(document, report)
        left_out_of: list[list[str]] = [[] for _ in found]
    else:
        found, left_out_of = [], []
        reader = _chatgpt_conversation if source == "chatgpt" else _claude_conversation
        for index, item in enumerate(document[:_MAX_CONVERSATIONS]):
            title = (
                str(item.get("title") or item.get("name") or "") if isinstance(item, dict) else ""
            )
            try:
                if not isinstance(item, dict):
                    raise ValueError("it is not a conversation")
                conversation, left_out = reader(item)
            except (ValueError, TypeError, AttributeError, ValidationError) as error:
                reason = str(error) if isinstance(error, ValueError) else "it cannot be read"
                report.refused.append((title[:200] or f"conversation {index + 1}", reason))
                continue
            found.append(conversation)
            left_out_of.append(left_out)
    if len(document) > _MAX_CONVERSATIONS and isinstance(document, list):
        report.refused.append(
            (f"{len(document) - _MAX_CONVERSATIONS:,} more", f"at most {_MAX_CONVERSATIONS:,}")
        )
    kept: list[ExportedConversation] = []
    for conversation, left_out in zip(found, left_out_of, strict=True):
        title = conversation.title or "Untitled conversation"
        if not conversation.messages:
            report.refused.append((title[:200], "it has no messages with text"))
            continue
        kept.append(conversation)
        report.imported.append((title[:200], len(conversation.messages), _summary(left_out)))
    return ParsedImport(conversations=kept, report=report)


def _summary(left_out: Sequence[str]) -> list[str]:
    counts: dict[str, int] = {}
    for what in left_out:
        counts[what] = counts.get(what, 0) + 1
    return [what if n == 1 else f"{what} ({n} times)" for what, n in counts.items()]


def _clean(value: str) -> str:
    # PostgreSQL keeps no NUL in text or JSON.
    return value.replace("\x00", "")


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value).replace("\\u0000", "")


def _step_rows(
    conversation: ExportedConversation, thread_id: str, source: str, person: str
) -> list[dict[str, Any]]:
    start = datetime.now(UTC)
    rows = []
    for index, message in enumerate(conversation.messages):
        kind = message.kind
        # A millisecond apart when the source has no times, so they keep their order.
        created = message.created_at or (start + timedelta(milliseconds=index)).isoformat()
        metadata: dict[str, Any] = {"imported_from": source}
        if message.kind == "assistant":
            metadata[REPLY_MARKER] = True
            if message.sql:
                metadata["sql"] = message.sql
            if message.table is not None:
                metadata["table"] = message.table.model_dump(mode="json")
            if message.files:
                metadata["files"] = [file.model_dump(mode="json") for file in message.files]
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "name": _clean(message.author or (person if kind == "user" else "tool"))[:200],
                "type": {"user": "user_message", "assistant": "assistant_message"}.get(
                    message.kind, "tool"
                ),
                "thread_id": thread_id,
                "metadata": _json(metadata),
                "is_error": message.is_error,
                "input": _clean(message.input),
                "output": _clean(message.text),
                "created_at": created,
                "show_input": "json" if message.kind == "tool" else None,
            }
        )
    return rows


async def store_import(
    engine: AsyncEngine,
    parsed: ParsedImport,
    *,
    user_id: str,
    identifier: str,
    person: str,
) -> list[str]:
    """Write the conversations as `identifier`'s own, in one transaction; their new ids."""
    is_sqlite = engine.dialect.name == "sqlite"
    source = parsed.report.source.lower()
    threads, steps, ids = [], [], []
    for conversation in parsed.conversations:
        thread_id = str(uuid.uuid4())
        ids.append(thread_id)
        metadata: dict[str, Any] = {"imported_from": source}
        if source == "switchboard" and conversation.model:
            metadata["model"] = conversation.model
        threads.append(
            {
                "id": thread_id,
                "created_at": conversation.created_at or datetime.now(UTC).isoformat(),
                "name": _clean(conversation.title or "Imported conversation")[:200],
                "user_id": user_id,
                "identifier": identifier,
                "tags": "[]" if is_sqlite else [],
                "metadata": _json(metadata),
            }
        )
        steps += _step_rows(conversation, thread_id, source, person)
    async with engine.begin() as connection:
        if threads:
            await connection.execute(
                text(
                    'INSERT INTO threads (id, "createdAt", name, "userId", "userIdentifier", '
                    "tags, metadata) VALUES (:id, :created_at, :name, :user_id, :identifier, "
                    ":tags, :metadata)"
                ),
                threads,
            )
        if steps:
            await connection.execute(
                text(
                    'INSERT INTO steps (id, name, type, "threadId", streaming, "isError", '
                    'metadata, input, output, "createdAt", start, "end", "showInput") VALUES '
                    "(:id, :name, :type, :thread_id, false, :is_error, :metadata, :input, "
                    ":output, :created_at, :created_at, :created_at, :show_input)"
                ),
                steps,
            )
    return ids
