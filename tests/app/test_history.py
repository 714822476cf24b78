"""Which messages of a conversation are replayed to the model."""

import json
from dataclasses import dataclass, field
from typing import Any

from app.history import (
    CUT_OFF_MARKER,
    CUT_OFF_NOTE,
    cut_off_reply,
    reply_metadata,
    to_openai_messages,
    with_cut_off_note,
)


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


def _cut_off(text: str) -> Item:
    return Item(
        "assistant_message", with_cut_off_note(text), reply_metadata("m") | {CUT_OFF_MARKER: True}
    )


def test_a_cut_off_reply_shows_the_note_and_goes_to_the_model_without_it() -> None:
    reply = _cut_off("Once upon a")
    items = [Item("user_message", "a story"), reply]

    assert reply.content.startswith("Once upon a") and CUT_OFF_NOTE in reply.content
    assert to_openai_messages(items)[-1] == {"role": "assistant", "content": "Once upon a"}
    assert cut_off_reply(items) == "Once upon a"


def test_only_the_reply_to_the_last_message_counts_as_cut_off() -> None:
    answered = [Item("user_message", "a story"), _cut_off("Once upon a")]
    answered += [
        Item("user_message", "go on"),
        Item("assistant_message", "a time.", reply_metadata("m")),
    ]
    unanswered = [Item("user_message", "a story"), _cut_off("Once upon a")]
    unanswered += [
        Item("user_message", "go on"),
        Item("assistant_message", "The hub is not reachable."),
    ]

    assert cut_off_reply(answered) is None
    assert cut_off_reply(unanswered) is None
    assert (
        cut_off_reply(
            [Item("user_message", "hi"), Item("assistant_message", "hello", reply_metadata("m"))]
        )
        is None
    )
    assert cut_off_reply([]) is None
