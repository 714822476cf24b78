"""What the chat sends to the hub when a person shares: the options read from their words,
and the snapshot read from the conversation and its files."""

from pathlib import Path

import orjson
import pytest
from chainlit.types import ThreadDict

from app.file_store import LocalFileStore
from app.sharing import share_request, snapshot_of
from hub.api.contract import ShareAudience, TraceDetail


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("", (ShareAudience.company, 30, TraceDetail.none)),
        ("for my team", (ShareAudience.team, 30, TraceDetail.none)),
        ("everyone, 7 days", (ShareAudience.company, 7, TraceDetail.none)),
        ("Team for 2d with the trace", (ShareAudience.team, 2, TraceDetail.full)),
        ("trace redacted, 900 days", (ShareAudience.company, 365, TraceDetail.redacted)),
        ("0 days", (ShareAudience.company, 1, TraceDetail.none)),
        ("teammates", (ShareAudience.company, 30, TraceDetail.none)),
    ],
)
def test_the_words_with_share_choose_audience_days_and_trace(
    words: str, expected: tuple[ShareAudience, int, TraceDetail]
) -> None:
    assert share_request(words) == expected


def test_the_snapshot_keeps_messages_tool_calls_and_their_tables_and_charts_in_order(
    tmp_path: Path,
) -> None:
    files = LocalFileStore(tmp_path)
    table = {"columns": ["city", "n"], "index": [0, 1], "data": [["Oslo", 3], ["Rome", 2]]}
    figure = {"data": [{"type": "bar", "x": ["Oslo", "Rome"], "y": [3, 2]}], "layout": {}}
    (tmp_path / "u1" / "e1").mkdir(parents=True)
    (tmp_path / "u1" / "e1" / "table").write_bytes(orjson.dumps(table))
    (tmp_path / "u1" / "e2").mkdir(parents=True)
    (tmp_path / "u1" / "e2" / "chart").write_bytes(orjson.dumps(figure))
    reply = {
        "id": "s3",
        "type": "assistant_message",
        "name": "Data analyst",
        "output": "Oslo leads.\n\n[Open the trace of this run](http://hub/traces/r1)",
        "createdAt": "2026-12-03T10:00:03Z",
        "metadata": '{"switchboard_reply": true, "agent": "analyst", "version": 2}',
    }
    thread: ThreadDict = {  # type: ignore[typeddict-item]
        "id": "t1",
        "name": "Cities",
        "steps": [
            reply,
            {
                "id": "s1",
                "type": "user_message",
                "name": "key-1",
                "output": "Which city?",
                "createdAt": "2026-12-03T10:00:01Z",
            },
            {
                "id": "s2",
                "type": "tool",
                "name": "bigquery · run_query",
                "input": '{"sql": "S"}',
                "output": "2 rows",
                "createdAt": "2026-12-03T10:00:02Z",
            },
            {
                "id": "s0",
                "type": "run",
                "name": "on_message",
                "output": "",
                "createdAt": "2026-12-03T10:00:00Z",
            },
            {
                "id": "s4",
                "type": "user_message",
                "name": "key-1",
                "output": "team",
                "command": "Share",
                "createdAt": "2026-12-03T10:00:04Z",
            },
        ],
        "elements": [
            {
                "id": "e1",
                "forId": "s3",
                "type": "dataframe",
                "name": "Query result",
                "objectKey": "u1/e1/table",
            },
            {
                "id": "e2",
                "forId": "s3",
                "type": "plotly",
                "name": "Chart",
                "objectKey": "u1/e2/chart",
            },
            {
                "id": "e3",
                "forId": "s3",
                "type": "file",
                "name": "secret.csv",
                "objectKey": "../outside",
            },
        ],
    }

    snapshot = snapshot_of(thread, files=files, person="ana", profile="agent:analyst")

    assert snapshot.answered_by == "agent analyst v2"
    assert [(step.kind, step.author, step.text) for step in snapshot.steps] == [
        ("user", "ana", "Which city?"),
        ("tool", "bigquery · run_query", "2 rows"),
        ("assistant", "Data analyst", "Oslo leads."),
    ]
    assert snapshot.steps[1].input == '{"sql": "S"}'
    shown = {element.name: element for element in snapshot.steps[2].elements}
    assert shown["Query result"].data == {
        "columns": ["city", "n"],
        "data": [["Oslo", 3], ["Rome", 2]],
    }
    assert shown["Chart"].data == figure
    # A file key that leaves the store's folder is read as nothing.
    assert shown["secret.csv"].text is None
