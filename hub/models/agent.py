"""Agents builders make without code: a draft they edit, and the versions they publish.

A published version is frozen; one version is live; restoring an earlier one makes it live
again. Drafts are their owner's; who else sees a published agent is its visibility. The owner
is a person or a service, known by (`owner_kind`, `owner_id`); `owner` is only their name.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from agents.spec import ActorKind
from hub.models.mcp_server import SLUG_PATTERN
from hub.models.service import utcnow

__all__ = [
    "Agent",
    "AgentCreate",
    "AgentDefinition",
    "AgentListItem",
    "AgentPublic",
    "AgentUpdate",
    "AgentVersion",
    "AgentVersionPublic",
    "Visibility",
]


class Visibility(StrEnum):
    private = "private"
    team = "team"
    everyone = "everyone"


def _clean_starters(starters: list[str]) -> list[str]:
    cleaned = [starter.strip() for starter in starters if starter.strip()]
    if len(cleaned) > 8:
        raise ValueError("at most 8 conversation starters")
    if any(len(starter) > 300 for starter in cleaned):
        raise ValueError("each conversation starter is at most 300 characters")
    return cleaned


class AgentDefinition(SQLModel):
    """What runs: the same fields in a draft and in a frozen version."""

    instructions: str = Field(default="", max_length=20000)
    model: str = Field(min_length=1, max_length=200)
    mcp_servers: list[str] = Field(default_factory=list, sa_type=JSON)
    # server slug -> the tools the agent may use; a server missing here offers all its tools.
    allowed_tools: dict[str, list[str]] = Field(default_factory=dict, sa_type=JSON)
    starters: list[str] = Field(default_factory=list, sa_type=JSON)
    max_steps: int = Field(default=8, ge=1, le=50)
    max_tokens: int = Field(default=1024, ge=16, le=32000)
    timeout_s: int = Field(default=120, ge=5, le=1800)


class AgentCreate(AgentDefinition):
    slug: str = Field(
        description="lower-case letters, digits and dashes", schema_extra={"pattern": SLUG_PATTERN}
    )
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    visibility: Visibility = Visibility.everyone

    @field_validator("starters")
    @classmethod
    def _starters(cls, starters: list[str]) -> list[str]:
        return _clean_starters(starters)


class AgentUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    visibility: Visibility | None = None
    instructions: str | None = Field(default=None, max_length=20000)
    model: str | None = Field(default=None, min_length=1, max_length=200)
    mcp_servers: list[str] | None = None
    allowed_tools: dict[str, list[str]] | None = None
    starters: list[str] | None = None
    max_steps: int | None = Field(default=None, ge=1, le=50)
    max_tokens: int | None = Field(default=None, ge=16, le=32000)
    timeout_s: int | None = Field(default=None, ge=5, le=1800)

    @field_validator("starters")
    @classmethod
    def _starters(cls, starters: list[str] | None) -> list[str] | None:
        return None if starters is None else _clean_starters(starters)


class Agent(AgentDefinition, table=True):
    """An agent and its draft (the fields it shares with its versions)."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=63, unique=True, index=True)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    owner: str = Field(max_length=100, index=True)
    owner_kind: str = Field(max_length=20)
    owner_id: str = Field(max_length=64, index=True)
    team: str = Field(max_length=100)
    visibility: Visibility = Field(default=Visibility.everyone, max_length=20)
    live_version_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class AgentVersion(AgentDefinition, table=True):
    __tablename__ = "agent_version"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", index=True, ondelete="CASCADE")
    number: int
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    published_by: str = Field(max_length=100)
    published_at: datetime = Field(default_factory=utcnow)


class AgentVersionPublic(AgentDefinition):
    id: int
    number: int
    name: str
    description: str
    published_by: str
    published_at: datetime
    is_live: bool = False


class AgentPublic(SQLModel):
    id: int
    slug: str
    name: str
    description: str
    owner: str
    owner_kind: ActorKind
    owner_id: str
    team: str
    visibility: Visibility
    created_at: datetime
    updated_at: datetime
    draft: AgentDefinition
    live: AgentVersionPublic | None = None
    versions: list[AgentVersionPublic] = Field(default_factory=list)

    @classmethod
    def definition_of(cls, row: Any) -> AgentDefinition:
        return AgentDefinition.model_validate(row, from_attributes=True)


class AgentListItem(SQLModel):
    """One row of the agent list. For people other than its owner (and admins), the name,
    description and model are the live version's, never the draft's."""

    slug: str
    name: str
    description: str
    owner: str
    team: str
    visibility: Visibility
    model: str
    starters: list[str] = Field(default_factory=list)
    live_version: int | None = None
    updated_at: datetime
