"""Prompts teams ship without code: a template of messages with `{{variables}}`, a model and its
parameters, in immutable numbered versions, one of which is production.

A prompt belongs to a team; its builders (and admins) add versions and choose which one is
production; anyone signed in reads it. Each change of production is kept as a release, so a
roll back knows which version was production before the current one.
"""

import re
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.models.mcp_server import SLUG_PATTERN
from hub.models.service import utcnow

__all__ = [
    "PLACEHOLDER",
    "PlaygroundRun",
    "ProductionChange",
    "Prompt",
    "PromptCreate",
    "PromptDefinition",
    "PromptDiff",
    "PromptListItem",
    "PromptMessage",
    "PromptParameters",
    "PromptPublic",
    "PromptRelease",
    "PromptVersion",
    "PromptVersionPublic",
    "placeholders",
]

# `{{name}}`: a variable's name is a Python identifier (ASCII).
VARIABLE_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
PLACEHOLDER = re.compile(r"\{\{(" + VARIABLE_NAME + r")\}\}")
_ANY_BRACES = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
MAX_SCHEMA_CHARS = 20_000


def placeholders(text: str) -> list[str]:
    """The variables `text` names, each once, in order of first use."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def _check_placeholders(text: str) -> None:
    for found in _ANY_BRACES.finditer(text):
        if not re.fullmatch(VARIABLE_NAME, found.group(1)):
            raise ValueError(
                f"{found.group(0)!r} is not a placeholder: write {{{{name}}}} with a name of "
                "letters, digits and underscores that does not start with a digit, no spaces"
            )
    rest = _ANY_BRACES.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise ValueError("a '{{' or '}}' has no partner; placeholders are written {{name}}")


class PromptMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1, max_length=20_000)

    @field_validator("content")
    @classmethod
    def _content(cls, content: str) -> str:
        _check_placeholders(content)
        return content


class PromptParameters(BaseModel):
    """The model parameters a version sends with every call."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=32_000)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    stop: list[str] | None = Field(default=None, max_length=4)
    seed: int | None = None


class PromptDefinition(SQLModel):
    """What a version is: the same fields when it is made and once it is frozen."""

    messages: list[dict[str, Any]] = Field(sa_type=JSON, min_length=1, max_length=50)
    model: str = Field(min_length=1, max_length=200)
    parameters: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # A JSON schema the answer must follow (sent as `response_format: json_schema`).
    response_format: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    note: str = Field(default="", max_length=2000)
    # MCP servers whose tools the model may call, as an agent's; the hub makes the calls.
    mcp_servers: list[str] = Field(default_factory=list, sa_type=JSON, max_length=10)
    # server slug -> the only tools offered of it; a server missing here offers all its tools.
    allowed_tools: dict[str, list[str]] = Field(default_factory=dict, sa_type=JSON)

    @field_validator("mcp_servers")
    @classmethod
    def _servers(cls, servers: list[str]) -> list[str]:
        return list(dict.fromkeys(servers))

    @field_validator("allowed_tools")
    @classmethod
    def _allowed_tools(cls, allowed: dict[str, list[str]]) -> dict[str, list[str]]:
        return {slug: list(dict.fromkeys(tools)) for slug, tools in allowed.items()}

    @field_validator("messages")
    @classmethod
    def _messages(cls, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        checked = []
        for i, message in enumerate(messages):
            try:
                checked.append(PromptMessage.model_validate(message).model_dump())
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                    for error in exc.errors()
                )
                raise ValueError(f"messages[{i}]: {problems}") from exc
        return checked

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        return PromptParameters.model_validate(parameters).model_dump(exclude_none=True)

    @field_validator("response_format")
    @classmethod
    def _response_format(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None:
            return None
        try:
            encoded = orjson.dumps(schema)
        except orjson.JSONEncodeError as exc:
            raise ValueError(f"the JSON schema cannot be stored as JSON: {exc}") from exc
        if len(encoded) > MAX_SCHEMA_CHARS:
            raise ValueError(f"the JSON schema is over {MAX_SCHEMA_CHARS} characters")
        if not isinstance(schema.get("type"), str):
            raise ValueError('a JSON schema with a "type", such as {"type": "object", ...}')
        return schema


class PromptCreate(PromptDefinition):
    """A new prompt with its first version, which becomes production."""

    name: str = Field(
        description="lower-case letters, digits and dashes", schema_extra={"pattern": SLUG_PATTERN}
    )
    description: str = Field(default="", max_length=2000)
    # One of the caller's teams; their first team when left out.
    team: str | None = Field(default=None, min_length=1, max_length=100)


class Prompt(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=63, unique=True, index=True)
    team: str = Field(max_length=100, index=True)
    description: str = Field(default="", max_length=2000)
    production_version: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = Field(max_length=100)


class PromptVersion(PromptDefinition, table=True):
    __tablename__ = "prompt_version"
    __table_args__ = (UniqueConstraint("prompt_id", "number", name="uq_prompt_version_number"),)

    id: int | None = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True, ondelete="CASCADE")
    number: int
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = Field(max_length=100)


class PromptRelease(SQLModel, table=True):
    """A change of production: which version it made production and which it replaced. A
    roll back's `previous` is what the version it returns to replaced back then, so rolling
    back again goes one further back."""

    __tablename__ = "prompt_release"

    id: int | None = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True, ondelete="CASCADE")
    version: int
    previous: int | None = None
    rollback: bool = False
    made_at: datetime = Field(default_factory=utcnow)
    made_by: str = Field(max_length=100)


class PromptVersionPublic(PromptDefinition):
    number: int
    created_at: datetime
    created_by: str
    is_production: bool = False


class PromptPublic(SQLModel):
    name: str
    team: str
    description: str
    production_version: int | None
    created_at: datetime
    created_by: str
    variables: list[str] = Field(default_factory=list)
    production: PromptVersionPublic | None = None


class PromptListItem(SQLModel):
    name: str
    team: str
    description: str
    production_version: int | None
    model: str | None
    versions: int
    created_at: datetime
    # Calls made by the prompt's name in the last 7 days (every version), and what they cost.
    calls_7d: int = 0
    cost_7d_usd: float = 0.0


class ProductionChange(SQLModel):
    version: int = Field(ge=1)


class PromptDiff(SQLModel):
    name: str
    from_version: int
    to_version: int
    # A unified diff of the two versions written out as text (difflib), one line each.
    lines: list[str]


class PlaygroundRun(PromptDefinition):
    """A run in the playground: a version, or an edit not saved yet, on one model with the
    variables' values (text, or any JSON value, as in a call by name)."""

    variables: dict[str, Any] = Field(default_factory=dict)
