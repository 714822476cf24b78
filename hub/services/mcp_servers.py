"""The MCP server registry in the database: records, snapshots of their tools, call statistics."""

import hashlib
import statistics
from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, delete, select

from hub.mcp.discovery import Discovery, tool_changes
from hub.models.actor import Actor
from hub.models.mcp_server import (
    McpHealth,
    McpServer,
    McpServerCreate,
    McpServerPublic,
    McpSnapshot,
    McpSnapshotPublic,
    McpStatus,
    McpToolCall,
    ToolInfo,
    ToolStats,
)
from hub.models.service import utcnow
from hub.services.audit import record_event

__all__ = [
    "approval_digest",
    "approve_pending",
    "create_server",
    "delete_server",
    "get_server",
    "list_servers",
    "list_snapshots",
    "offerable_servers",
    "offered_tools",
    "pending_snapshot",
    "record_change",
    "record_discovery",
    "record_down",
    "to_public",
    "tool_stats",
]

_STATS_WINDOW = timedelta(days=7)


def get_server(*, session: Session, slug: str) -> McpServer | None:
    return session.exec(select(McpServer).where(McpServer.slug == slug)).first()


def offerable_servers(*, session: Session, selected: list[str]) -> list[McpServerPublic]:
    """The servers a builder may give an agent or a prompt: the active ones, and any of
    `selected` (already chosen) whatever their state."""
    return [
        to_public(session=session, server=server)
        for server in list_servers(session=session)
        if server.status == McpStatus.active or server.slug in selected
    ]


def list_servers(
    *,
    session: Session,
    text: str | None = None,
    tag: str | None = None,
    team: str | None = None,
    status: McpStatus | None = None,
) -> list[McpServer]:
    query = select(McpServer).order_by(col(McpServer.name), col(McpServer.slug))
    if team:
        query = query.where(McpServer.team == team)
    if status:
        query = query.where(McpServer.status == status)
    servers = list(session.exec(query).all())
    if tag:
        servers = [s for s in servers if tag.strip().lower() in s.tags]
    if text and text.strip():
        words = text.lower().split()
        servers = [
            s
            for s in servers
            if all(
                word in f"{s.slug} {s.name} {s.description} {' '.join(s.tags)}".lower()
                for word in words
            )
        ]
    return servers


def _snapshot(session: Session, snapshot_id: int | None) -> McpSnapshot | None:
    return session.get(McpSnapshot, snapshot_id) if snapshot_id is not None else None


def approval_digest(snapshot: McpSnapshot) -> str:
    """What an approval names: this snapshot, not only its tools (the same tools filed again,
    as at a new address, are another snapshot to read)."""
    return hashlib.sha256(f"{snapshot.id}:{snapshot.digest}".encode()).hexdigest()


def pending_snapshot(*, session: Session, server: McpServer) -> McpSnapshot | None:
    """The snapshot waiting for its owner's review, if any."""
    return _snapshot(session, server.pending_snapshot_id)


def offered_tools(*, session: Session, server: McpServer) -> list[dict[str, Any]]:
    """The tools chats and agents may use: the approved snapshot's, and only while active."""
    if server.status != McpStatus.active:
        return []
    approved = _snapshot(session, server.approved_snapshot_id)
    return list(approved.tools) if approved else []


def create_server(
    *,
    session: Session,
    server_in: McpServerCreate,
    actor: Actor,
    discovery: Discovery,
    auth_secret_encrypted: str | None,
) -> McpServer:
    data = server_in.model_dump(exclude={"auth_header_value"})
    server = McpServer(
        **data,
        auth_secret_encrypted=auth_secret_encrypted,
        created_by=actor.name,
        health=McpHealth.up,
        health_checked_at=utcnow(),
        init_latency_ms=discovery.init_latency_ms,
        list_latency_ms=discovery.list_latency_ms,
        last_error=discovery.refused_summary,
    )
    session.add(server)
    session.flush()
    assert server.id is not None
    snapshot = _new_snapshot(server.id, discovery, changes=["first snapshot"])
    snapshot.approved_at, snapshot.approved_by = utcnow(), actor.name
    session.add(snapshot)
    session.flush()
    server.approved_snapshot_id = snapshot.id
    record_change(
        session=session,
        actor=actor,
        action="mcp_server.registered",
        server=server,
        details={"team": server.team, "url": server.url, "tools": len(discovery.tools)},
    )
    session.commit()
    session.refresh(server)
    return server


def record_change(
    *,
    session: Session,
    actor: Actor,
    action: str,
    server: McpServer,
    details: dict[str, Any] | None = None,
) -> None:
    """The audit event of a change to `server`, committed with it (`mcp_server.<what>`)."""
    record_event(
        session=session,
        actor=actor,
        action=action,
        object_kind="mcp_server",
        object_id=server.slug,
        details=details,
    )


def _new_snapshot(server_id: int, discovery: Discovery, changes: list[str]) -> McpSnapshot:
    return McpSnapshot(
        server_id=server_id,
        digest=discovery.digest,
        tools=discovery.tools,
        resources=discovery.resources,
        prompts=discovery.prompts,
        changes=changes,
    )


def record_discovery(
    *, session: Session, server: McpServer, discovery: Discovery, new_address: bool = False
) -> list[str]:
    """Mark the server up and compare what it offers now with what was approved.

    Unchanged: nothing more. Only tools removed: the new list is taken as it is (a tool
    that is gone cannot do harm). A new or changed tool, or a `new_address` (what was approved
    at the old one says nothing of who answers at the new one): the server needs review and
    offers no tools until its owner approves the new snapshot. Returns the changes found."""
    server.health = McpHealth.up
    server.health_checked_at = utcnow()
    server.init_latency_ms = discovery.init_latency_ms
    server.list_latency_ms = discovery.list_latency_ms
    # Up, but say what it offered that the hub left out (names it refused).
    server.last_error = discovery.refused_summary
    approved = _snapshot(session, server.approved_snapshot_id)
    assert server.id is not None
    changes: list[str] = []
    if new_address:
        changes = [f"new address {server.url}"]
        changes += tool_changes(approved.tools if approved else [], discovery.tools)
        # Nothing is approved at the new address, so later checks keep it waiting for review.
        server.approved_snapshot_id = None
        _file_for_review(session, server, _new_snapshot(server.id, discovery, changes))
    elif approved is None or approved.digest != discovery.digest:
        changes = tool_changes(approved.tools if approved else [], discovery.tools)
        pending = _snapshot(session, server.pending_snapshot_id)
        if all(change.endswith(" removed") for change in changes):
            snapshot = _new_snapshot(server.id, discovery, changes)
            snapshot.approved_at, snapshot.approved_by = utcnow(), "hub (tools removed)"
            session.add(snapshot)
            session.flush()
            server.approved_snapshot_id, server.pending_snapshot_id = snapshot.id, None
            if server.status == McpStatus.needs_review:
                server.status = McpStatus.active
        elif pending is None or pending.digest != discovery.digest:
            _file_for_review(session, server, _new_snapshot(server.id, discovery, changes))
    elif server.pending_snapshot_id is not None:
        # The server went back to what was approved.
        server.pending_snapshot_id = None
        if server.status == McpStatus.needs_review:
            server.status = McpStatus.active
    session.add(server)
    session.commit()
    return changes


def _file_for_review(session: Session, server: McpServer, snapshot: McpSnapshot) -> None:
    session.add(snapshot)
    session.flush()
    server.pending_snapshot_id = snapshot.id
    if server.status == McpStatus.active:
        server.status = McpStatus.needs_review


def record_down(*, session: Session, server: McpServer, error: str) -> None:
    server.health = McpHealth.down
    server.health_checked_at = utcnow()
    server.last_error = error[:1000]
    session.add(server)
    session.commit()


def approve_pending(*, session: Session, server: McpServer, actor: Actor) -> McpSnapshot | None:
    pending = _snapshot(session, server.pending_snapshot_id)
    if pending is None:
        return None
    pending.approved_at, pending.approved_by = utcnow(), actor.name
    server.approved_snapshot_id, server.pending_snapshot_id = pending.id, None
    if server.status == McpStatus.needs_review:
        server.status = McpStatus.active
    server.updated_at = utcnow()
    session.add(pending)
    session.add(server)
    details = {"snapshot": pending.id, "changes": pending.changes[:20]}
    record_change(
        session=session, actor=actor, action="mcp_server.approved", server=server, details=details
    )
    session.commit()
    return pending


def delete_server(*, session: Session, server: McpServer, actor: Actor) -> None:
    session.exec(delete(McpToolCall).where(col(McpToolCall.server_id) == server.id))
    session.exec(delete(McpSnapshot).where(col(McpSnapshot.server_id) == server.id))
    session.delete(server)
    details = {"team": server.team, "url": server.url}
    record_change(
        session=session, actor=actor, action="mcp_server.deleted", server=server, details=details
    )
    session.commit()


def list_snapshots(*, session: Session, server: McpServer) -> list[McpSnapshotPublic]:
    query = (
        select(McpSnapshot)
        .where(McpSnapshot.server_id == server.id)
        .order_by(col(McpSnapshot.id).desc())
    )
    return [
        McpSnapshotPublic(
            id=snapshot.id or 0,
            created_at=snapshot.created_at,
            digest=snapshot.digest,
            tool_names=[tool["name"] for tool in snapshot.tools],
            changes=list(snapshot.changes),
            approved_at=snapshot.approved_at,
            approved_by=snapshot.approved_by,
        )
        for snapshot in session.exec(query).all()
    ]


def tool_stats(*, session: Session, server: McpServer) -> list[ToolStats]:
    """Calls, error rate and median latency per tool over the last week."""
    since = utcnow() - _STATS_WINDOW
    query = select(McpToolCall).where(
        McpToolCall.server_id == server.id, col(McpToolCall.created_at) >= since
    )
    by_tool: dict[str, list[McpToolCall]] = defaultdict(list)
    for call in session.exec(query).all():
        by_tool[call.tool].append(call)
    stats = []
    for tool, calls in sorted(by_tool.items()):
        errors = sum(call.is_error for call in calls)
        stats.append(
            ToolStats(
                tool=tool,
                calls=len(calls),
                errors=errors,
                error_rate=round(errors / len(calls), 4),
                p50_latency_ms=round(statistics.median(c.latency_ms for c in calls), 2),
                last_called_at=max(call.created_at for call in calls),
            )
        )
    return stats


def to_public(*, session: Session, server: McpServer) -> McpServerPublic:
    approved = _snapshot(session, server.approved_snapshot_id)
    pending = _snapshot(session, server.pending_snapshot_id)
    return McpServerPublic(
        **server.model_dump(exclude={"auth_secret_encrypted", "tools"}),
        tools=_tool_infos(approved),
        has_auth=server.auth_secret_encrypted is not None,
        pending_changes=list(pending.changes) if pending else [],
        pending_tools=_tool_infos(pending),
        pending_digest=approval_digest(pending) if pending else None,
    )


def _tool_infos(snapshot: McpSnapshot | None) -> list[ToolInfo]:
    return [
        ToolInfo(
            name=tool["name"],
            description=tool.get("description") or "",
            input_schema=tool.get("input_schema") or {},
            hash=tool["hash"],
        )
        for tool in (snapshot.tools if snapshot else [])
    ]
