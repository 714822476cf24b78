"""Turn the messages of a conversation into the history sent to the model on each turn.

Only the person's messages and the model's own replies count (not a command such as Share,
which is an instruction to the chat): Chainlit also keeps notices
("Task manually stopped.") and error messages in the chat context, and those must not be
replayed to the model as if it had said them. Model replies are recognised by a marker in
their metadata, which is stored with the step and so survives a resume.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from openai.types.chat import ChatCompletionMessageParam

__all__ = [
    "REPLY_MARKER",
    "ChatItem",
    "is_model_reply",
    "metadata_of",
    "reply_metadata",
    "to_openai_messages",
]

REPLY_MARKER = "switchboard_reply"


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


def to_openai_messages(items: Iterable[ChatItem]) -> list[ChatCompletionMessageParam]:
    messages: list[ChatCompletionMessageParam] = []
    for item in items:
        if not item.content or item.command:
            continue
        if item.type == "user_message":
            messages.append({"role": "user", "content": item.content})
        elif is_model_reply(item):
            messages.append({"role": "assistant", "content": item.content})
    return messages
