"""Export and import of conversations, on SQLite and PostgreSQL: an analyst's conversation
stored as the chat stores it (question, query tool step, answer with its table, chart and
`result.csv` in the file store) comes out as JSON, Markdown and a PDF whose text layer holds
the answer and the table; its JSON imported again gives the same messages; ChatGPT and Claude
exports, made here in their formats, import with a report."""

import csv
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chainlit as cl
import pytest
from chainlit.context import init_http_context
from pdfminer.high_level import extract_text

from app.conversation_export import conversation_of, export_json, export_markdown
from app.conversation_format import ExportedConversation
from app.conversation_import import ParsedImport, parse_import, store_import
from app.conversation_pdf import export_pdf
from app.data_layer import SwitchboardDataLayer
from app.file_store import LocalFileStore
from app.history import reply_metadata
from app.results import ResultTable, elements_for
from hub.core.db import migrate

pytestmark = pytest.mark.anyio

LIMIT = 10 * 1024 * 1024
QUESTION = "Which region sold the most umbrellas in März?"
SQL = "SELECT region, SUM(units) AS units\nFROM sales\nWHERE month = '2026-03'\nGROUP BY 1"
ANSWER = "North sold the most umbrellas: 1204 units, ahead of Süd-Ost."
COLUMNS = (("region", "STRING"), ("units", "INT64"))
ROWS = ({"region": "North", "units": 1204}, {"region": "Süd-Ost", "units": 987})


@dataclass
class Stored:
    layer: SwitchboardDataLayer
    files: LocalFileStore
    thread_id: str


@pytest.fixture
async def stored(database_url: str, tmp_path: Path) -> AsyncIterator[Stored]:
    """Ada's conversation with the analyst, written through the chat's data layer."""
    migrate(database_url)
    files = LocalFileStore(tmp_path / "chat-files")
    layer = SwitchboardDataLayer(database_url, files=files)
    thread_id = str(uuid.uuid4())
    init_http_context(thread_id=thread_id)
    ada = await layer.create_user(cl.User(identifier="ada"))
    assert ada is not None
    await layer.create_user(cl.User(identifier="bob"))
    question = cl.Message(content=QUESTION, author="ada", type="user_message")
    question.created_at = "2026-03-02T09:00:00.000Z"
    await layer.create_step(question.to_dict())
    await layer.update_thread(thread_id, name="Umbrellas", user_id=ada.id, tags=["agent:analyst"])
    tool = cl.Step(name="bigquery · run_query", type="tool", show_input="json")
    tool.input = json.dumps({"sql": SQL}, indent=4)
    tool.output = json.dumps([list(row.values()) for row in ROWS])
    tool.created_at = "2026-03-02T09:00:01.000Z"
    await layer.create_step(tool.to_dict())
    metadata = reply_metadata("test-model") | {"agent": "analyst", "version": 1}
    answer = cl.Message(content=ANSWER, author="analyst", metadata=metadata)
    answer.created_at = "2026-03-02T09:00:02.000Z"
    await layer.create_step(answer.to_dict())
    for element in elements_for(ResultTable(columns=COLUMNS, rows=ROWS, sql=SQL)):
        element.for_id = answer.id
        element.thread_id = thread_id
        await layer.create_element(element)
    try:
        yield Stored(layer=layer, files=files, thread_id=thread_id)
    finally:
        await layer.close()


def _csv_text() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([name for name, _ in COLUMNS])
    writer.writerows([[row[name] for name, _ in COLUMNS] for row in ROWS])
    return out.getvalue()


async def _exported(stored: Stored, thread_id: str) -> ExportedConversation:
    thread = await stored.layer.get_thread(thread_id)
    assert thread is not None
    return conversation_of(thread, stored.files)


async def _import_as_bob(stored: Stored, parsed: ParsedImport) -> list[str]:
    bob = await stored.layer.get_user("bob")
    assert bob is not None
    return await store_import(
        stored.layer.engine, parsed, user_id=bob.id, identifier="bob", person="bob"
    )


async def test_json_export_carries_the_answer_sql_and_table_and_imports_as_the_same_messages(
    stored: Stored,
) -> None:
    exported = await _exported(stored, stored.thread_id)
    document = json.loads(export_json([exported]))
    (conversation,) = document["conversations"]
    assert conversation["title"] == "Umbrellas"
    kinds = [(m["kind"], m["text"]) for m in conversation["messages"]]
    assert kinds[0] == ("user", QUESTION)
    assert kinds[1][0] == "tool"
    assert kinds[2] == ("assistant", ANSWER)
    answer = conversation["messages"][2]
    assert answer["sql"] == SQL
    assert answer["table"] == {
        "columns": [name for name, _ in COLUMNS],
        "rows": [[row[name] for name, _ in COLUMNS] for row in ROWS],
    }
    assert [(f["name"], f["text"]) for f in answer["files"]] == [("result.csv", _csv_text())]
    assert json.loads(conversation["messages"][1]["input"]) == {"sql": SQL}

    parsed = parse_import(export_json([exported]), max_bytes=LIMIT)
    assert parsed.report.source == "Switchboard"
    assert parsed.report.imported == [("Umbrellas", 3, [])]
    (new_id,) = await _import_as_bob(stored, parsed)
    thread = await stored.layer.get_thread(new_id)
    assert thread is not None and thread["userIdentifier"] == "bob"
    again = conversation_of(thread, stored.files)
    assert again.messages == exported.messages
    assert again.title == exported.title
    # The imported answer is history for the model when the conversation goes on.
    answers = [s for s in thread["steps"] if s["type"] == "assistant_message"]
    assert [s["metadata"]["switchboard_reply"] for s in answers] == [True]
    # Ada's conversation is still hers alone.
    original = await stored.layer.get_thread(stored.thread_id)
    assert original is not None and original["userIdentifier"] == "ada"


async def test_markdown_and_pdf_hold_the_answer_the_sql_and_the_table(stored: Stored) -> None:
    exported = await _exported(stored, stored.thread_id)
    markdown = export_markdown([exported])
    assert QUESTION in markdown and ANSWER in markdown and SQL in markdown
    for row in ROWS:
        assert f"| {row['region']} | {row['units']} |" in markdown
    assert _csv_text().strip() in markdown

    pdf = export_pdf([exported])
    assert pdf.startswith(b"%PDF")
    layer = extract_text(io.BytesIO(pdf))
    flat = " ".join(layer.split())
    for word in ANSWER.split():
        assert word in flat, word
    for line in SQL.splitlines():
        assert line in layer, line
    # The table's cells are cells: each on its own line of the text layer (the CSV's lines
    # hold a whole row, the answer a sentence).
    lines = {line.strip() for line in layer.splitlines()}
    for name, _ in COLUMNS:
        assert name in lines, name
    for row in ROWS:
        for value in row.values():
            assert str(value) in lines, value
    assert "Umbrellas" in flat and QUESTION in flat


def _chatgpt_node(
    node_id: str, parent: str | None, children: list[str], message: dict[str, Any] | None
) -> dict[str, Any]:
    return {"id": node_id, "parent": parent, "children": children, "message": message}


def _chatgpt_message(role: str, parts: list[Any], at: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "author": {"role": role, "name": None, "metadata": {}},
        "create_time": at,
        "content": {"content_type": "multimodal_text" if extra else "text", "parts": parts},
        "status": "finished_successfully",
        "metadata": extra.get("metadata", {"model_slug": "gpt-4o"} if role == "assistant" else {}),
    }


def _chatgpt_export() -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Two conversations in ChatGPT's `conversations.json`: one whose first question was
    edited (two branches; the later one is current) and which holds an image, and one with
    nothing but a system message. Also what should be imported of the first, in order."""
    at = 1_767_225_600.0
    image = {"content_type": "image_asset_pointer", "asset_pointer": "file-service://x"}
    nodes = [
        _chatgpt_node("root", None, ["sys"], None),
        _chatgpt_node(
            "sys", "root", ["q1", "q1b"], _chatgpt_message("system", ["You are ChatGPT."], at)
        ),
        _chatgpt_node("q1", "sys", ["a1"], _chatgpt_message("user", ["Old question?"], at + 1)),
        _chatgpt_node("a1", "q1", [], _chatgpt_message("assistant", ["Old answer."], at + 2)),
        _chatgpt_node(
            "q1b",
            "sys",
            ["a1b"],
            _chatgpt_message("user", [image, "What is in this picture?"], at + 3, metadata={}),
        ),
        _chatgpt_node(
            "a1b", "q1b", ["q2"], _chatgpt_message("assistant", ["A heron by a pond."], at + 4)
        ),
        _chatgpt_node(
            "q2", "a1b", ["a2"], _chatgpt_message("user", ["Is it a grey heron?"], at + 5)
        ),
        _chatgpt_node(
            "a2",
            "q2",
            [],
            _chatgpt_message("assistant", ["Yes: grey, with a black crest."], at + 6),
        ),
    ]
    first = {
        "title": "Heron photo",
        "create_time": at,
        "update_time": at + 6,
        "mapping": {node["id"]: node for node in nodes},
        "current_node": "a2",
        "id": str(uuid.uuid4()),
    }
    only_system = {
        "title": "Empty one",
        "create_time": at,
        "mapping": {
            "root": _chatgpt_node("root", None, ["s"], None),
            "s": _chatgpt_node("s", "root", [], _chatgpt_message("system", ["Hidden."], at)),
        },
        "current_node": "s",
    }
    expected = [
        ("user_message", "What is in this picture?"),
        ("assistant_message", "A heron by a pond."),
        ("user_message", "Is it a grey heron?"),
        ("assistant_message", "Yes: grey, with a black crest."),
    ]
    return [first, only_system], expected


async def test_a_chatgpt_export_imports_its_current_branch_with_a_report(stored: Stored) -> None:
    conversations, expected = _chatgpt_export()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("conversations.json", json.dumps(conversations))
        zipped.writestr("chat.html", "<html></html>")
    for data in (json.dumps(conversations).encode(), archive.getvalue()):
        parsed = parse_import(data, max_bytes=LIMIT)
        assert parsed.report.source == "ChatGPT"
        assert parsed.report.imported == [
            ("Heron photo", len(expected), ["a image_asset_pointer part"])
        ]
        assert parsed.report.refused == [("Empty one", "it has no messages with text")]
    (new_id,) = await _import_as_bob(stored, parsed)
    thread = await stored.layer.get_thread(new_id)
    assert thread is not None
    assert thread["name"] == "Heron photo" and thread["userIdentifier"] == "bob"
    steps = sorted(thread["steps"], key=lambda step: str(step["createdAt"]))
    assert [(step["type"], step["output"]) for step in steps] == expected
    assert [step["name"] for step in steps if step["type"] == "assistant_message"] == ["gpt-4o"] * 2


async def test_a_claude_export_imports_with_a_report(stored: Stored) -> None:
    claude = [
        {
            "uuid": str(uuid.uuid4()),
            "name": "Tide tables",
            "created_at": "2026-02-01T10:00:00.000000Z",
            "chat_messages": [
                {
                    "uuid": str(uuid.uuid4()),
                    "sender": "human",
                    "text": "When is high tide?",
                    "content": [{"type": "text", "text": "When is high tide?"}],
                    "created_at": "2026-02-01T10:00:00.000000Z",
                    "attachments": [],
                    "files": [{"file_name": "chart.png"}],
                },
                {
                    "uuid": str(uuid.uuid4()),
                    "sender": "assistant",
                    "text": "At 14:05, 4.2 m.",
                    "content": [{"type": "text", "text": "At 14:05, 4.2 m."}],
                    "created_at": "2026-02-01T10:00:05.000000Z",
                },
            ],
        }
    ]
    parsed = parse_import(json.dumps(claude).encode(), max_bytes=LIMIT)
    assert parsed.report.source == "Claude"
    assert parsed.report.imported == [("Tide tables", 2, ["the attached file 'chart.png'"])]
    (new_id,) = await _import_as_bob(stored, parsed)
    thread = await stored.layer.get_thread(new_id)
    assert thread is not None
    steps = sorted(thread["steps"], key=lambda step: str(step["createdAt"]))
    assert [(s["type"], s["output"]) for s in steps] == [
        ("user_message", "When is high tide?"),
        ("assistant_message", "At 14:05, 4.2 m."),
    ]
