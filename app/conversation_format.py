"""The shape of an exported conversation: what the JSON export holds, what the Markdown and PDF
exports are drawn from, and what an import turns each source format into before it is stored.

An analyst's answer carries the SQL of its query, the result table and its `result.csv`; a tool
step carries its arguments (`input`) and result (`text`).
"""

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "ExportFile",
    "ExportedConversation",
    "ExportedFile",
    "ExportedMessage",
    "ExportedTable",
    "MessageKind",
]

EXPORT_FORMAT: Final = "switchboard.conversations"
EXPORT_VERSION: Final = 1

MessageKind = Literal["user", "assistant", "tool"]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ExportedTable(_Shape):
    columns: list[str]
    rows: list[list[JsonValue]]


class ExportedFile(_Shape):
    name: str = Field(max_length=200)
    mime: str | None = Field(default=None, max_length=100)
    # The file's text when it is a small text file (a query's CSV); otherwise only named.
    text: str | None = None


class ExportedMessage(_Shape):
    kind: MessageKind
    author: str = Field(default="", max_length=200)
    text: str = ""
    created_at: str | None = Field(default=None, max_length=40)
    # A tool step's arguments.
    input: str = ""
    is_error: bool = False
    # An analyst's answer: the query that made its table.
    sql: str = ""
    table: ExportedTable | None = None
    files: list[ExportedFile] = Field(default_factory=list)


class ExportedConversation(_Shape):
    id: str = Field(default="", max_length=200)
    title: str = Field(default="", max_length=1000)
    created_at: str | None = Field(default=None, max_length=40)
    # The chat profile it was held with (a model, or `agent:<slug>`), when known.
    model: str = Field(default="", max_length=200)
    messages: list[ExportedMessage]


class ExportFile(_Shape):
    format: Literal["switchboard.conversations"] = EXPORT_FORMAT
    version: Literal[1] = EXPORT_VERSION
    exported_at: str
    conversations: list[ExportedConversation]
