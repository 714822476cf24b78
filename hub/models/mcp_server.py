"""An MCP server a team registered, the snapshots of its tools, and the calls made through the hub.

The header secret is stored encrypted (`auth_secret_encrypted`) and never appears in a public
model: routes return `McpServerPublic`, which only says whether a secret is set.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from hub.models.service import utcnow

__all__ = [
    "HEADER_NAME_PATTERN",
    "SLUG_PATTERN",
    "McpApproval",
    "McpHealth",
    "McpServer",
    "McpServerBase",
    "McpServerCreate",
    "McpServerPublic",
    "McpServerUpdate",
    "McpSnapshot",
    "McpSnapshotPublic",
    "McpStatus",
    "McpToolCall",
    "McpTransport",
    "ToolInfo",
    "ToolStats",
]

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
HEADER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,99}$"
# Headers the hub sets itself; a registration cannot replace them.
_RESERVED_HEADERS = {"host", "content-type", "content-length", "accept", "mcp-session-id"}


class McpTransport(StrEnum):
    streamable_http = "streamable_http"
    sse = "sse"


class McpStatus(StrEnum):
    active = "active"
    disabled = "disabled"
    needs_review = "needs_review"


class McpHealth(StrEnum):
    unknown = "unknown"
    up = "up"
    down = "down"


def _clean_tags(tags: list[str]) -> list[str]:
    cleaned = [tag.strip().lower() for tag in tags if tag.strip()]
    if any(len(tag) > 40 for tag in cleaned):
        raise ValueError("each tag is at most 40 characters")
    return sorted(set(cleaned))


class McpServerBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    team: str = Field(min_length=1, max_length=100)
    transport: McpTransport = McpTransport.streamable_http
    url: str = Field(min_length=1, max_length=2000)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


def _checked_tags(tags: list[str] | None) -> list[str] | None:
    if tags is None:
        return None
    if len(tags) > 20:
        raise ValueError("at most 20 tags")
    return _clean_tags(tags)


def _checked_header_name(name: str | None) -> str | None:
    if name is not None and name.lower() in _RESERVED_HEADERS:
        raise ValueError(f"{name!r} is set by the hub itself; choose another header")
    return name


class McpServerCreate(McpServerBase):
    slug: str = Field(
        description="lower-case letters, digits and dashes", schema_extra={"pattern": SLUG_PATTERN}
    )
    auth_header_name: str | None = Field(
        default=None, schema_extra={"pattern": HEADER_NAME_PATTERN}
    )
    auth_header_value: str | None = Field(default=None, min_length=1, max_length=4000)

    # A registration and an update are checked by the same functions.
    _tags = field_validator("tags")(_checked_tags)
    _header = field_validator("auth_header_name")(_checked_header_name)


class McpServerUpdate(SQLModel):
    """Fields left out stay as they are. A new `url` drops the stored auth secret unless
    `auth_header_value` is given again (or `clear_auth`); the hub never sends a secret to an
    address other than the one it was given for."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    transport: McpTransport | None = None
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    tags: list[str] | None = None
    auth_header_name: str | None = Field(
        default=None, schema_extra={"pattern": HEADER_NAME_PATTERN}
    )
    auth_header_value: str | None = Field(default=None, min_length=1, max_length=4000)
    clear_auth: bool = False

    _tags = field_validator("tags")(_checked_tags)
    _header = field_validator("auth_header_name")(_checked_header_name)


class McpServer(McpServerBase, table=True):
    __tablename__ = "mcp_server"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=63, unique=True, index=True)
    auth_header_name: str | None = Field(default=None, max_length=100)
    auth_secret_encrypted: str | None = Field(default=None, max_length=8000)
    status: McpStatus = Field(default=McpStatus.active, max_length=20)
    health: McpHealth = Field(default=McpHealth.unknown, max_length=20)
    health_checked_at: datetime | None = None
    init_latency_ms: float | None = None
    list_latency_ms: float | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    approved_snapshot_id: int | None = None
    pending_snapshot_id: int | None = None
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ToolInfo(SQLModel):
    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)
    hash: str = ""


class McpSnapshot(SQLModel, table=True):
    """What a server offered at one discovery; `changes` says how it differs from the one
    approved before it."""

    __tablename__ = "mcp_snapshot"

    id: int | None = Field(default=None, primary_key=True)
    server_id: int = Field(foreign_key="mcp_server.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow)
    digest: str = Field(max_length=64)
    tools: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    resources: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    prompts: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    changes: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    approved_at: datetime | None = None
    approved_by: str | None = Field(default=None, max_length=100)


class McpApproval(SQLModel):
    """What an owner approves: the pending snapshot they read, by its digest."""

    digest: str | None = Field(default=None, max_length=64)


class McpSnapshotPublic(SQLModel):
    id: int
    created_at: datetime
    digest: str
    tool_names: list[str]
    changes: list[str]
    approved_at: datetime | None
    approved_by: str | None


class McpToolCall(SQLModel, table=True):
    """One tool call that went through the hub."""

    __tablename__ = "mcp_tool_call"

    id: int | None = Field(default=None, primary_key=True)
    server_id: int = Field(foreign_key="mcp_server.id", index=True, ondelete="CASCADE")
    tool: str = Field(max_length=200)
    caller: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    latency_ms: float = 0.0
    is_error: bool = False
    error: str | None = Field(default=None, max_length=1000)


class ToolStats(SQLModel):
    tool: str
    calls: int
    errors: int
    error_rate: float
    p50_latency_ms: float | None
    last_called_at: datetime | None


class McpServerPublic(SQLModel):
    id: int
    slug: str
    name: str
    description: str
    team: str
    transport: McpTransport
    url: str
    tags: list[str]
    has_auth: bool
    auth_header_name: str | None
    status: McpStatus
    health: McpHealth
    health_checked_at: datetime | None
    init_latency_ms: float | None
    list_latency_ms: float | None
    last_error: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    tools: list[ToolInfo] = Field(default_factory=list)
    # What the last check found, when it differs from the approved tools (owners review it).
    pending_changes: list[str] = Field(default_factory=list)
    pending_tools: list[ToolInfo] = Field(default_factory=list)
    # Names the pending snapshot; approving gives it back, so what the owner read is what gets
    # approved.
    pending_digest: str | None = None
