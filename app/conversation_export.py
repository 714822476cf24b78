"""A stored conversation (Chainlit's thread, its steps and elements) as an export: JSON in the
shape of app/conversation_format.py, or Markdown.

An analyst's answer is shown with its table and `result.csv` (the message's elements, read
from the chat's file store) and the SQL of the query behind them (the last query a tool ran in
that turn). A conversation that was imported keeps these in its answers' metadata instead.
"""

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from chainlit.types import ThreadDict
from pydantic import ValidationError

from app.conversation_format import (
    ExportedConversation,
    ExportedFile,
    ExportedMessage,
    ExportedTable,
    ExportFile,
    MessageKind,
)
from app.file_store import LocalFileStore
from app.history import metadata_of
from app.sharing import SHARE_COMMAND
from app.turns import TRACE_LINK

__all__ = [
    "conversation_of",
    "export_json",
    "export_markdown",
    "markdown_table",
    "sql_of",
]

_KINDS: dict[str, MessageKind] = {
    "user_message": "user",
    "assistant_message": "assistant",
    "tool": "tool",
}
# A reply's link to its run's trace at the hub: not part of what was said.
_TRACE_LINE = re.compile(r"\n*\[" + re.escape(TRACE_LINK) + r"\]\([^)]*\)")
# A small text file (a query's CSV) goes into the export; a larger one is only named.
_MAX_FILE_TEXT = 1_000_000


def sql_of(arguments: str) -> str:
    """The SQL among a tool step's arguments (Chainlit keeps them as JSON text), or ""."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return ""
    if isinstance(parsed, dict):
        for key in ("sql", "query"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return ""


def _content(element: Mapping[str, Any], files: LocalFileStore) -> bytes:
    key = element.get("objectKey")
    if not key:
        return b""
    try:
        path = files.path_of(str(key))
        if path.stat().st_size > _MAX_FILE_TEXT:
            return b""
        return path.read_bytes()
    except (ValueError, OSError):
        return b""


def _table_of(content: bytes) -> ExportedTable | None:
    try:
        data = orjson.loads(content) if content else None
        if not isinstance(data, dict):
            return None
        return ExportedTable(columns=data.get("columns", []), rows=data.get("data", []))
    except (orjson.JSONDecodeError, ValidationError):
        return None


def _attachments(
    thread: ThreadDict, files: LocalFileStore
) -> dict[str, tuple[ExportedTable | None, list[ExportedFile]]]:
    """Per step id: the table and the files attached to it (charts are left out)."""
    found: dict[str, tuple[ExportedTable | None, list[ExportedFile]]] = {}
    for element in thread.get("elements") or []:
        item: Mapping[str, Any] = dict(element)
        for_id, kind = item.get("forId"), item.get("type")
        if not for_id or kind not in ("dataframe", "file"):
            continue
        table, attached = found.get(str(for_id), (None, []))
        content = _content(item, files)
        if kind == "dataframe":
            table = table or _table_of(content)
        else:
            mime = str(item.get("mime") or "")[:100] or None
            is_text = (mime or "").startswith("text/") and bool(content)
            text = content.decode("utf-8", "replace") if is_text else None
            attached = [
                *attached,
                ExportedFile(name=str(item.get("name") or "file")[:200], mime=mime, text=text),
            ]
        found[str(for_id)] = (table, attached)
    return found


def _kept(metadata: Mapping[str, Any]) -> tuple[str, ExportedTable | None, list[ExportedFile]]:
    """What an imported answer keeps in its metadata: its SQL, table and files."""
    sql = str(metadata.get("sql") or "")
    try:
        table = ExportedTable.model_validate(metadata["table"]) if metadata.get("table") else None
        files = [ExportedFile.model_validate(file) for file in metadata.get("files") or []]
    except ValidationError:
        return sql, None, []
    return sql, table, files


def conversation_of(thread: ThreadDict, files: LocalFileStore) -> ExportedConversation:
    attachments = _attachments(thread, files)
    messages: list[ExportedMessage] = []
    last_sql = ""
    steps = sorted(thread.get("steps") or [], key=lambda s: str(s.get("createdAt") or ""))
    for step in steps:
        item: Mapping[str, Any] = dict(step)
        kind = _KINDS.get(str(item.get("type")))
        if kind is None or item.get("command") == SHARE_COMMAND:
            continue
        text = str(item.get("output") or "")
        if kind == "assistant":
            text = _TRACE_LINE.sub("", text)
        created_at = str(item.get("createdAt") or "")[:40] or None
        if kind == "user":
            last_sql = ""
        if kind == "tool":
            arguments = str(item.get("input") or "")
            last_sql = sql_of(arguments) or last_sql
            messages.append(
                ExportedMessage(
                    kind="tool",
                    author=str(item.get("name") or "")[:200],
                    text=text,
                    created_at=created_at,
                    input=arguments,
                    is_error=bool(item.get("isError")),
                )
            )
            continue
        table, attached = attachments.get(str(item.get("id")), (None, []))
        sql = ""
        if kind == "assistant":
            kept_sql, kept_table, kept_files = _kept(metadata_of(item.get("metadata")))
            table, attached = table or kept_table, attached or kept_files
            sql = kept_sql or (last_sql if table is not None else "")
        if not text and table is None and not attached:
            continue
        messages.append(
            ExportedMessage(
                kind=kind,
                author=str(item.get("name") or "")[:200],
                text=text,
                created_at=created_at,
                sql=sql,
                table=table,
                files=attached,
            )
        )
    metadata = metadata_of(thread.get("metadata"))
    tags = thread.get("tags") or []
    model = metadata.get("model") or (tags[0] if tags else "")
    return ExportedConversation(
        id=str(thread["id"]),
        title=str(thread.get("name") or "")[:1000],
        created_at=str(thread.get("createdAt") or "")[:40] or None,
        model=str(model or "")[:200],
        messages=messages,
    )


def export_json(conversations: Sequence[ExportedConversation]) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    document = ExportFile(exported_at=now, conversations=list(conversations))
    return document.model_dump_json(indent=2).encode()


def _cell(value: Any) -> str:
    shown = "" if value is None else str(value)
    return " ".join(shown.split()).replace("\\", "\\\\").replace("|", "\\|")


def markdown_table(table: ExportedTable) -> str:
    lines = [
        "| " + " | ".join(_cell(name) for name in table.columns) + " |",
        "|" + "---|" * len(table.columns),
    ]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _fence(text: str, language: str = "") -> str:
    """`text` in a code fence longer than any run of backticks inside it."""
    ticks = "`" * max(3, _longest_backticks(text) + 1)
    return f"{ticks}{language}\n{text}\n{ticks}"


def _longest_backticks(text: str) -> int:
    longest = run = 0
    for character in text:
        run = run + 1 if character == "`" else 0
        longest = max(longest, run)
    return longest


def _heading(message: ExportedMessage) -> str:
    who = {"user": "You", "assistant": message.author or "Assistant"}.get(message.kind)
    label = who or f"Tool: {message.author or 'tool'}"
    when = f" · {message.created_at[:16].replace('T', ' ')}" if message.created_at else ""
    return f"### {label}{when}"


def _message_markdown(message: ExportedMessage) -> Iterable[str]:
    yield _heading(message)
    if message.kind == "tool":
        if message.input:
            yield "Arguments:\n\n" + _fence(message.input, "json")
        yield ("Error:\n\n" if message.is_error else "Result:\n\n") + _fence(message.text)
        return
    if message.text:
        yield message.text
    if message.sql:
        yield "SQL:\n\n" + _fence(message.sql, "sql")
    if message.table is not None:
        yield markdown_table(message.table)
    for file in message.files:
        if file.text is not None:
            language = "csv" if file.name.endswith(".csv") else ""
            yield f"`{file.name}`:\n\n" + _fence(file.text.rstrip("\n"), language)
        else:
            yield f"Attached: `{file.name}`"


def export_markdown(conversations: Sequence[ExportedConversation]) -> str:
    parts: list[str] = []
    for conversation in conversations:
        parts.append(f"# {' '.join(conversation.title.split()) or 'Untitled conversation'}")
        about = []
        if conversation.created_at:
            about.append(f"Started {conversation.created_at[:16].replace('T', ' ')} UTC")
        if conversation.model:
            about.append(f"with {conversation.model}")
        if about:
            parts.append(f"_{' '.join(about)}_")
        for message in conversation.messages:
            parts.extend(_message_markdown(message))
    return "\n\n".join(parts) + "\n"
