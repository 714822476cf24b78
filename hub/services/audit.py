"""The audit log: `record_event` where a change is made, `list_events` for admins.

An event is added to the caller's session, so it commits (or rolls back) with the change it
describes. There is no function that changes or deletes an event, and the database refuses
to (migration 0009). The caller's address comes from the request being answered (the hub
sets it for every request, `caller_address`) unless one is given; the command line has none.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from hub.models.actor import Actor
from hub.models.audit import AuditEvent

__all__ = ["caller_address", "list_events", "record_event"]

_address: ContextVar[str | None] = ContextVar("audit_caller_address", default=None)


@contextmanager
def caller_address(address: str | None) -> Iterator[None]:
    """While answering a request: the address events recorded meanwhile carry."""
    token = _address.set(address)
    try:
        yield
    finally:
        _address.reset(token)


def record_event(
    *,
    session: Session,
    actor: Actor | None,
    action: str,
    object_kind: str,
    object_id: str,
    details: dict[str, Any] | None = None,
    address: str | None = None,
) -> None:
    """Add one event to `session` (the caller commits it with its change). `actor` None is the
    system (the `switchboard` command, the hub itself); `details` is small JSON, never a
    secret."""
    session.add(
        AuditEvent(
            actor_kind=actor.kind if actor is not None else "system",
            actor_id=actor.id if actor is not None else "",
            actor_name=actor.name if actor is not None else "system",
            action=action,
            object_kind=object_kind,
            object_id=object_id,
            details=details or {},
            address=address or _address.get(),
        )
    )


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_events(
    *,
    session: Session,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEvent]:
    """Events newest first. `actor` is a name or an id (a person's key, a service's id, or
    `system`); `action` one action, or a family as `mcp_server.*`; `since` and `until` bound
    the time (inclusive, UTC when no zone is given)."""
    query = select(AuditEvent)
    if actor:
        query = query.where(or_(AuditEvent.actor_id == actor, AuditEvent.actor_name == actor))
    if action and action.endswith(".*"):
        query = query.where(col(AuditEvent.action).startswith(action[:-1], autoescape=True))
    elif action:
        query = query.where(AuditEvent.action == action)
    if since is not None:
        query = query.where(col(AuditEvent.at) >= _utc(since))
    if until is not None:
        query = query.where(col(AuditEvent.at) <= _utc(until))
    query = query.order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
    return list(session.exec(query.offset(offset).limit(limit)).all())
