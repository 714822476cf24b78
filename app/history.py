"""Turn the messages of a conversation into the history sent to the model on each turn.

Only the person's messages and the model's own replies count (not a command such as Share,
which is an instruction to the chat): Chainlit also keeps notices
("Task manually stopped.") and error messages in the chat context, and those must not be
replayed to the model as if it had said them. Model replies are recognised by a marker in
their metadata, which is stored with the step and so survives a resume.

A reply is stored while it streams, marked as cut off and ending with a note saying so; the
end of its turn stores it whole, without either. A reply still marked after its turn is one
whose chat process stopped mid-answer: the model gets it back without the note.
"""

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from openai.types.chat import ChatCompletionMessageParam

__all__ = [
    "ATTACHED_TEXT",
    "CUT_OFF_MARKER",
    "CUT_OFF_NOTE",
    "REPLY_MARKER",
    "TRACE_LINK",
    "ChatItem",
    "cut_off_reply",
    "is_model_reply",
    "metadata_of",
    "reply_metadata",
    "to_openai_messages",
    "with_cut_off_note",
    "without_cut_off_note",
]

REPLY_MARKER = "switchboard_reply"
# What the files attached to a person's message gave the model (kept in its metadata).
ATTACHED_TEXT = "attached_text"
CUT_OFF_MARKER = "cut_off"
CUT_OFF_NOTE = "⚠ This answer was cut off: the chat server stopped before it finished."
_NOTE_SUFFIX = f"\n\n{CUT_OFF_NOTE}"
# The last line of a reply: a link to the run's trace, for who may read it (not for the model).
TRACE_LINK = "Open the trace of this run"
_TRACE_LINE = re.compile(r"\n*\[" + re.escape(TRACE_LINK) + r"\]\([^)]*\)$")


class ChatItem(Protocol):
    """What history needs from a message; `chainlit.Message` satisfies it."""

    @property
    def type(self) -> str: ...

    @property
    def content(self) -> str: ...

    @property
    def metadata(self) -> Mapping[str, Any] | str | None: ...

    # A command the person picked in the message box (Share): an instruction to the chat.
    @property
    def command(self) -> str | None: ...


def reply_metadata(model: str) -> dict[str, Any]:
    return {REPLY_MARKER: True, "model": model}


def metadata_of(metadata: Mapping[str, Any] | str | None) -> Mapping[str, Any]:
    # Steps read back from SQLite can carry their metadata as a JSON string.
    if isinstance(metadata, str):
        try:
            decoded = json.loads(metadata)
        except ValueError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return metadata or {}


def is_model_reply(item: ChatItem) -> bool:
    return item.type == "assistant_message" and bool(metadata_of(item.metadata).get(REPLY_MARKER))


def with_cut_off_note(text: str) -> str:
    return text + _NOTE_SUFFIX


def without_cut_off_note(text: str) -> str:
    return text.removesuffix(_NOTE_SUFFIX)


def cut_off_reply(items: Iterable[ChatItem]) -> str | None:
    """The text of the reply to the person's last message, if its chat process stopped before
    the reply ended (None when it ended, or when there is none)."""
    last: ChatItem | None = None
    for item in items:
        if item.type == "user_message" and not item.command:
            last = None
        elif is_model_reply(item):
            last = item
    if last is None or not metadata_of(last.metadata).get(CUT_OFF_MARKER):
        return None
    return without_cut_off_note(last.content)


def to_openai_messages(items: Iterable[ChatItem]) -> list[ChatCompletionMessageParam]:
    messages: list[ChatCompletionMessageParam] = []
    for item in items:
        if not item.content or item.command:
            continue
        if item.type == "user_message":
            # The text of the files attached to the message went to the model with it.
            attached = metadata_of(item.metadata).get(ATTACHED_TEXT)
            content = f"{item.content}\n\n{attached}" if attached else item.content
            messages.append({"role": "user", "content": content})
        elif is_model_reply(item):
            text = _TRACE_LINE.sub("", without_cut_off_note(item.content))
            messages.append({"role": "assistant", "content": text})
    return messages
