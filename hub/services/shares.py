"""Share links: made by a conversation's owner, read by signed-in colleagues (or the owner's
team), listed and revoked by the owner; admins may read and revoke any."""

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub.api.contract import ShareAudience, ShareCreate, Snapshot, TraceDetail
from hub.core.errors import GoneError, NotFoundError, PermissionDeniedError, UnsuitableError
from hub.models.actor import Actor
from hub.models.service import utcnow
from hub.models.share import HIDDEN, Share, SharePublic, ShareView
from hub.models.trace import TraceRunPublic
from hub.services.audit import record_event
from hub.services.traces import get_trace, list_traces

__all__ = [
    "create_share",
    "list_shares",
    "require_person",
    "revoke_share",
    "share_path",
    "to_public",
    "view_share",
]

# The chat's conversations (Chainlit's table, made by migration 0002): who owns a thread.
_threads = sa.table("threads", sa.column("id", sa.Text), sa.column("userIdentifier", sa.Text))


def share_path(share_id: str) -> str:
    return f"/s/{share_id}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _status(share: Share, now: datetime) -> str:
    if share.revoked_at is not None:
        return "revoked"
    return "expired" if _aware(share.expires_at) <= now else "active"


def to_public(share: Share, *, hub_url: str, now: datetime | None = None) -> SharePublic:
    return SharePublic(
        id=share.id,
        url=hub_url.rstrip("/") + share_path(share.id),
        thread_id=share.thread_id,
        title=share.title,
        owner_name=share.owner_name,
        audience=ShareAudience(share.audience),
        team=share.team,
        created_at=share.created_at,
        expires_at=share.expires_at,
        revoked_at=share.revoked_at,
        status=_status(share, now or utcnow()),
        trace_detail=TraceDetail(share.trace_detail),
    )


def require_person(actor: Actor) -> None:
    if actor.kind != "user":
        raise PermissionDeniedError(
            "Only people share and read conversations; a service token cannot."
        )


def _redacted(run: TraceRunPublic) -> TraceRunPublic:
    steps = [step.model_copy(update={"input": HIDDEN, "output": HIDDEN}) for step in run.timeline]
    return run.model_copy(update={"timeline": steps})


def _traces(
    session: Session, actor: Actor, thread_id: str, detail: TraceDetail
) -> list[dict[str, Any]]:
    """The conversation's agent runs the owner may read, oldest first, as much as they chose
    to show."""
    if detail == TraceDetail.none:
        return []
    runs = list_traces(session=session, actor=actor, conversation=thread_id)
    found = []
    for listed in reversed(runs):
        run = get_trace(session=session, run_id=listed.id, actor=actor)
        if run is not None:
            found.append(_redacted(run) if detail == TraceDetail.redacted else run)
    return [run.model_dump(mode="json") for run in found]


def create_share(*, session: Session, actor: Actor, share_in: ShareCreate) -> Share:
    """A link to a snapshot of the actor's own conversation."""
    require_person(actor)
    owner = (
        session.connection()
        .execute(sa.select(_threads.c.userIdentifier).where(_threads.c.id == share_in.thread_id))
        .first()
    )
    if owner is None or owner[0] != actor.id:
        raise NotFoundError(f"You have no conversation {share_in.thread_id!r} to share.")
    if not share_in.snapshot.steps:
        raise UnsuitableError("This conversation has no messages yet; write one, then share it.")
    now = utcnow()
    share = Share(
        id=secrets.token_urlsafe(24),
        thread_id=share_in.thread_id,
        title=share_in.title.strip() or "A conversation",
        owner_name=actor.name,
        owner_kind=actor.kind,
        owner_id=actor.id,
        audience=share_in.audience.value,
        team=actor.team,
        created_at=now,
        expires_at=now + timedelta(days=share_in.expires_in_days),
        snapshot=share_in.snapshot.model_dump(mode="json"),
        trace_detail=share_in.trace.value,
        traces=_traces(session, actor, share_in.thread_id, share_in.trace),
    )
    session.add(share)
    details = {
        "thread": share.thread_id,
        "audience": share.audience,
        "team": share.team,
        "trace": share.trace_detail,
    }
    record_event(
        session=session,
        actor=actor,
        action="share.created",
        object_kind="share",
        object_id=share.id,
        details={**details, "expires_at": share.expires_at.isoformat()},
    )
    session.commit()
    session.refresh(share)
    return share


def _may_read(share: Share, actor: Actor) -> bool:
    if actor.is_admin or actor.has_identity(share.owner_kind, share.owner_id):
        return True
    if actor.kind != "user":
        return False
    return share.audience == ShareAudience.company or actor.in_team(share.team)


def view_share(*, session: Session, share_id: str, actor: Actor, hub_url: str) -> ShareView:
    """The snapshot behind a link, for someone it is meant for; 404 for anyone else (the link
    might as well not exist), 410 once revoked or expired."""
    share = session.get(Share, share_id)
    if share is None or not _may_read(share, actor):
        raise NotFoundError("No such shared conversation, or it is not shared with you.")
    now = utcnow()
    public = to_public(share, hub_url=hub_url, now=now)
    if public.status == "revoked":
        raise GoneError(f"{share.owner_name} revoked this link; ask them for a new one.")
    if public.status == "expired":
        raise GoneError(
            f"This link expired on {_aware(share.expires_at):%Y-%m-%d %H:%M} UTC; ask "
            f"{share.owner_name} for a new one.",
        )
    return ShareView(
        **public.model_dump(),
        snapshot=Snapshot.model_validate(share.snapshot),
        traces=[TraceRunPublic.model_validate(run) for run in share.traces],
    )


def list_shares(*, session: Session, actor: Actor) -> list[Share]:
    """The actor's own links, newest first."""
    query = (
        select(Share)
        .where(Share.owner_kind == actor.kind, Share.owner_id == actor.id)
        .order_by(col(Share.created_at).desc(), col(Share.id).desc())
    )
    return list(session.exec(query))


def revoke_share(*, session: Session, share_id: str, actor: Actor) -> Share:
    """Revoke a link at once (its owner or an admin); revoking twice is harmless."""
    share = session.get(Share, share_id)
    if share is None or not (actor.is_admin or actor.owns(share)):
        raise NotFoundError("No such link of yours.")
    if share.revoked_at is None:
        share.revoked_at = utcnow()
        session.add(share)
        record_event(
            session=session,
            actor=actor,
            action="share.revoked",
            object_kind="share",
            object_id=share.id,
            details={"owner": share.owner_name, "thread": share.thread_id},
        )
        session.commit()
        session.refresh(share)
    return share
