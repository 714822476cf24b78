"""The audit log: one row for every change to the platform, who made it, when and to what.

Rows are only ever added (`hub.services.audit.record_event`); the database refuses to change
or delete one (triggers made by migration 0009).
"""

import re
from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import field_validator, model_validator
from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from hub.models.service import utcnow

__all__ = [
    "ACTIONS",
    "AuditActorKind",
    "AuditEvent",
    "AuditEventPublic",
    "AuditFilter",
    "AuditSearch",
]

# What is recorded (the action of each event), by what it changes.
ACTIONS = (
    "sign_in",
    "role.changed",
    "session.revoked",
    "user.deleted",
    "service.created",
    "service.limits_changed",
    "mcp_server.registered",
    "mcp_server.changed",
    "mcp_server.approved",
    "mcp_server.disabled",
    "mcp_server.enabled",
    "mcp_server.deleted",
    "agent.created",
    "agent.published",
    "agent.restored",
    "agent.deleted",
    "prompt.created",
    "prompt.version_added",
    "prompt.production_changed",
    "prompt.gate_set",
    "prompt.gate_removed",
    "prompt.gate_check_started",
    "prompt.gate_passed",
    "prompt.gate_refused",
    "prompt.gate_failed",
    "prompt.gate_overridden",
    "share.created",
    "share.revoked",
)

# Who made the change: a person, a service with its token, or the platform itself (the
# `switchboard` command, start-up).
AuditActorKind = Literal["user", "service", "system"]


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_kind: str = Field(max_length=20)
    # A person's key or a service's id; empty for the system.
    actor_id: str = Field(default="", max_length=64, index=True)
    # The name they had then, for display only.
    actor_name: str = Field(default="", max_length=200)
    # A short dotted name: `sign_in`, `service.created`, `mcp_server.approved`, ...
    action: str = Field(max_length=64, index=True)
    object_kind: str = Field(max_length=40)
    object_id: str = Field(max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # The caller's address, where known (requests; not the command line).
    address: str | None = Field(default=None, max_length=64)


class AuditEventPublic(SQLModel):
    id: int
    at: datetime
    actor_kind: AuditActorKind
    actor_id: str
    actor_name: str
    action: str
    object_kind: str
    object_id: str
    details: dict[str, Any]
    address: str | None


_ACTION = re.compile(r"[a-z_]+(\.[a-z_]+)*(\.\*)?")


class AuditSearch(SQLModel):
    """Which events to list: who, what, when. Empty values mean any."""

    actor: str | None = Field(
        default=None, max_length=200, description="a name, a person's key or a service's id"
    )
    action: str | None = Field(
        default=None, max_length=64, description="e.g. `agent.published`, or `agent.*`"
    )
    since: datetime | None = Field(default=None, description="from (ISO 8601; UTC if no zone)")
    until: datetime | None = Field(default=None, description="until (ISO 8601; UTC if no zone)")

    @field_validator("actor", "action", mode="before")
    @classmethod
    def _empty_is_any(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("action")
    @classmethod
    def _action(cls, action: str | None) -> str | None:
        if action is not None and not _ACTION.fullmatch(action):
            raise ValueError(
                "give an action like 'mcp_server.approved' or 'sign_in', or a family like "
                "'mcp_server.*' (lower-case letters, '_' and dots)"
            )
        return action

    @field_validator("since", "until", mode="before")
    @classmethod
    def _iso_8601(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{value[:40]!r} is not a time; give one in ISO 8601, like 2026-12-01 or "
                "2026-12-01T09:30:00Z (UTC when no zone is given)"
            ) from None

    @field_validator("since", "until")
    @classmethod
    def _utc_if_no_zone(cls, moment: datetime | None) -> datetime | None:
        if moment is None or moment.tzinfo:
            return moment
        return moment.replace(tzinfo=UTC)

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        if self.since and self.until and self.since > self.until:
            raise ValueError("'since' is after 'until'; swap them")
        return self


class AuditFilter(AuditSearch):
    """Which events the audit page lists, and a page of them."""

    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0)
