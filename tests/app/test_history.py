"""Which messages of a conversation are replayed to the model."""

import json
from dataclasses import dataclass, field
from typing import Any

from app.history import reply_metadata, to_openai_messages


@dataclass
class Item:
    type: str
    content: str
    metadata: dict[str, Any] | str | None = field(default=None)
    command: str | None = None


def test_the_persons_messages_and_the_models_replies_make_the_history() -> None:
    items = [
        Item("user_message", "hi"),
        Item("assistant_message", "hello", reply_metadata("m")),
        Item("user_message", "team only", command="Share"),
        Item("assistant_message", "Shared with team growth until 2027-01-02: http://hub/s/x"),
        Item("user_message", "and now?"),
    ]

    assert to_openai_messages(items) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "and now?"},
    ]


def test_notices_and_errors_are_not_replayed_as_if_the_model_said_them() -> None:
    items = [
        Item("user_message", "hi"),
        Item("assistant_message", "Task manually stopped."),
        Item("assistant_message", "The hub is not reachable.", {}),
        Item("run", "a tool step", reply_metadata("m")),
    ]

    assert to_openai_messages(items) == [{"role": "user", "content": "hi"}]


def test_a_reply_read_back_from_sqlite_with_json_text_metadata_still_counts() -> None:
    items = [Item("assistant_message", "partial rep", json.dumps(reply_metadata("m")))]

    assert to_openai_messages(items) == [{"role": "assistant", "content": "partial rep"}]


def test_empty_messages_are_skipped() -> None:
    items = [Item("user_message", ""), Item("assistant_message", "", reply_metadata("m"))]

    assert to_openai_messages(items) == []
