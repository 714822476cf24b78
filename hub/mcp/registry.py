"""The MCP registry at work: registering (with discovery), health checks on a schedule (by the
one hub replica that leads, hub/core/leader.py), and tool calls through the hub. Database work
runs in worker threads; network work is async."""

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import anyio
from sqlalchemy import Engine
from sqlmodel import Session

from hub.core.batch_writer import BatchWriter
from hub.core.crypto import SecretBox
from hub.core.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
    PermissionDeniedError,
    TooSoonError,
    UnsuitableError,
    UpstreamError,
)
from hub.core.leader import LeaderLock
from hub.core.request_ids import REQUEST_ID_HEADER, current_request_id
from hub.core.roles import Permission
from hub.mcp.client import Endpoint, McpUnavailableError
from hub.mcp.discovery import discover
from hub.mcp.netguard import AddressRefusedError, NetworkPolicy, check_url_syntax
from hub.mcp.pool import SessionPool
from hub.models.actor import Actor
from hub.models.mcp_server import (
    McpHealth,
    McpServer,
    McpServerCreate,
    McpServerPublic,
    McpServerUpdate,
    McpSnapshotPublic,
    McpStatus,
    McpToolCall,
    ToolStats,
)
from hub.models.service import utcnow
from hub.services import mcp_servers as store

__all__ = ["McpRegistry", "ToolCallEntry"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
# How long a tool call trusts what it read of a server (other hub processes may change it).
_CALL_CACHE_TTL_S = 2.0
_CONCURRENT_CHECKS = 8


@dataclass(slots=True)
class ToolCallEntry:
    server_id: int
    tool: str
    caller: str
    created_at: datetime = field(default_factory=utcnow)
    latency_ms: float = 0.0
    is_error: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Callable:
    server_id: int
    version: str
    endpoint: Endpoint
    tools: frozenset[str]
    read_at: float


def _fresh(session: Session, server: McpServer) -> McpServer:
    """The server as the database has it now (another request may have changed it)."""
    current = session.get(McpServer, server.id)
    if current is None:
        raise NotFoundError(f"The MCP server {server.slug!r} was deleted meanwhile.")
    return current


class McpRegistry:
    def __init__(
        self,
        *,
        engine: Engine,
        box: SecretBox,
        policy: NetworkPolicy,
        connect_timeout_s: float,
        discovery_timeout_s: float,
        call_timeout_s: float,
        check_interval_s: float,
        check_now_interval_s: float,
        flush_interval_s: float,
        max_pending_calls: int,
        leader: LeaderLock,
    ) -> None:
        self._engine = engine
        self._box = box
        self._policy = policy
        self._connect_timeout_s = connect_timeout_s
        self._discovery_timeout_s = discovery_timeout_s
        self._check_interval_s = check_interval_s
        self._check_now_interval_s = check_now_interval_s
        # When "check now" last ran per server id (time.monotonic()), for its rate limit.
        self._checked_now: dict[int, float] = {}
        self._leader = leader
        self.pool = SessionPool(
            policy=policy, connect_timeout_s=connect_timeout_s, call_timeout_s=call_timeout_s
        )
        self.calls: BatchWriter[ToolCallEntry] = BatchWriter(
            engine,
            McpToolCall,
            flush_interval_s,
            name="mcp_tool_calls",
            max_pending=max_pending_calls,
        )
        self._callable: dict[str, _Callable] = {}
        self._check_locks: dict[str, asyncio.Lock] = {}
        self._monitor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.calls.start()
        self._monitor = asyncio.create_task(self._watch(), name="mcp-health-checks")

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            try:
                await self._monitor
            except asyncio.CancelledError:
                pass
        await self.pool.close()
        await self.calls.close()
        await anyio.to_thread.run_sync(self._leader.close)

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    def _endpoint(self, server: McpServer) -> Endpoint:
        headers = {}
        if server.auth_header_name and server.auth_secret_encrypted:
            headers[server.auth_header_name] = self._box.decrypt(server.auth_secret_encrypted)
        return Endpoint(url=server.url, transport=server.transport, headers=headers)

    async def _discover(self, endpoint: Endpoint) -> Any:
        if request_id := current_request_id():
            # Registering or "check now": the request's id goes along to the server.
            headers = {REQUEST_ID_HEADER: request_id, **endpoint.headers}
            endpoint = Endpoint(url=endpoint.url, transport=endpoint.transport, headers=headers)
        return await discover(
            endpoint,
            policy=self._policy,
            connect_timeout_s=self._connect_timeout_s,
            timeout_s=self._discovery_timeout_s,
        )

    async def _server(self, slug: str) -> McpServer:
        server = await self._db(lambda s: store.get_server(session=s, slug=slug))
        if server is None:
            raise NotFoundError(f"No MCP server is registered as {slug!r}.")
        return server

    async def _managed(self, slug: str, actor: Actor) -> McpServer:
        server = await self._server(slug)
        actor.require(Permission.build)
        if not actor.can_manage(server.team):
            raise PermissionDeniedError(
                f"Only team {server.team!r} or an admin can change {server.slug!r}."
            )
        return server

    async def public(self, slug: str) -> McpServerPublic:
        server = await self._server(slug)
        return await self._db(lambda s: store.to_public(session=s, server=server))

    async def snapshots(self, slug: str) -> list[McpSnapshotPublic]:
        server = await self._server(slug)
        return await self._db(lambda s: store.list_snapshots(session=s, server=server))

    async def stats(self, slug: str) -> list[ToolStats]:
        server = await self._server(slug)
        await self.calls.flush()
        return await self._db(lambda s: store.tool_stats(session=s, server=server))

    async def health_counts(self) -> dict[tuple[str, str], int]:
        """How many registered servers are in each (health, status), for the metrics."""
        servers = await self._db(lambda s: store.list_servers(session=s))
        return dict(Counter((str(s.health), str(s.status)) for s in servers))

    async def register(self, server_in: McpServerCreate, actor: Actor) -> McpServerPublic:
        actor.require(Permission.build)
        if not actor.can_manage(server_in.team):
            teams = ", ".join(repr(team) for team in sorted(actor.teams | {actor.team}))
            raise PermissionDeniedError(
                f"You can register servers for your teams ({teams}) only "
                f"(an admin can register for any team), not for {server_in.team!r}.",
            )
        existing = await self._db(lambda s: store.get_server(session=s, slug=server_in.slug))
        if existing is not None:
            raise ConflictError(f"The slug {server_in.slug!r} is taken; choose another.")
        if bool(server_in.auth_header_name) != bool(server_in.auth_header_value):
            raise InvalidError("Give both the auth header's name and its value, or neither.")
        headers = {}
        if server_in.auth_header_name and server_in.auth_header_value:
            headers[server_in.auth_header_name] = server_in.auth_header_value
        endpoint = Endpoint(url=server_in.url, transport=server_in.transport, headers=headers)
        discovery = await self._checked_discovery(endpoint, actor)
        encrypted = (
            self._box.encrypt(server_in.auth_header_value) if server_in.auth_header_value else None
        )

        def create(session: Session) -> McpServerPublic:
            server = store.create_server(
                session=session,
                server_in=server_in,
                actor=actor,
                discovery=discovery,
                auth_secret_encrypted=encrypted,
            )
            return store.to_public(session=session, server=server)

        created = await self._db(create)
        logger.info("%s registered MCP server %s at %s", actor.name, created.slug, created.url)
        return created

    async def _checked_discovery(self, endpoint: Endpoint, actor: Actor) -> Any:
        """Discover a server being registered or changed. A refusal names the kind of failure;
        the addresses a name resolved to go to the log, and only an admin is told them."""
        try:
            check_url_syntax(endpoint.url)
            return await self._discover(endpoint)
        except (AddressRefusedError, McpUnavailableError) as error:
            logger.warning(
                "%s could not use the MCP server at %s: %s", actor.name, endpoint.url, error
            )
            reason = str(error) if actor.is_admin else error.public
            if isinstance(error, AddressRefusedError):
                raise UnsuitableError(f"Refused: {reason}") from error
            raise UnsuitableError(f"Could not use this server: {reason}") from error

    async def update(self, slug: str, update: McpServerUpdate, actor: Actor) -> McpServerPublic:
        server = await self._managed(slug, actor)
        changes = update.model_dump(
            exclude_unset=True, exclude={"auth_header_name", "auth_header_value", "clear_auth"}
        )
        if update.auth_header_name is not None and update.auth_header_value is None:
            raise InvalidError("Give the auth header's value with its name.")
        moved = "url" in changes and changes["url"] != server.url
        new_secret = update.clear_auth or update.auth_header_value is not None
        if moved and server.auth_secret_encrypted is not None and not new_secret:
            # The secret was given for the old address; the new one may belong to anyone.
            raise InvalidError(
                "The stored auth secret is never sent to a new address: give auth_header_value "
                "again with the new url, or clear_auth: true to use none."
            )
        for key, value in changes.items():
            setattr(server, key, value)
        if update.clear_auth:
            server.auth_header_name = server.auth_secret_encrypted = None
        elif update.auth_header_value is not None:
            name = update.auth_header_name or server.auth_header_name
            if not name:
                raise InvalidError("Give the auth header's name with its value.")
            server.auth_header_name = name
            server.auth_secret_encrypted = self._box.encrypt(update.auth_header_value)
        reconnect = bool({"url", "transport"} & changes.keys()) or new_secret
        discovery = (
            await self._checked_discovery(self._endpoint(server), actor) if reconnect else None
        )
        server.updated_at = utcnow()
        # Which fields changed, never their values: the auth header's value is a secret.
        changed = sorted(changes.keys() | ({"auth"} if new_secret else set()))

        def save(session: Session) -> McpServerPublic:
            merged = session.merge(server)
            store.record_change(
                session=session,
                actor=actor,
                action="mcp_server.changed",
                server=merged,
                details={"fields": changed},
            )
            session.commit()
            if discovery is not None:
                store.record_discovery(
                    session=session, server=merged, discovery=discovery, new_address=moved
                )
            return store.to_public(session=session, server=merged)

        saved = await self._db(save)
        self._changed(server)
        return saved

    async def set_status(self, slug: str, status: McpStatus, actor: Actor) -> McpServerPublic:
        server = await self._managed(slug, actor)
        if status == McpStatus.active and server.pending_snapshot_id is not None:
            raise ConflictError(
                "Its tools changed since they were approved: review and approve them first."
            )

        action = "mcp_server.disabled" if status == McpStatus.disabled else "mcp_server.enabled"

        def save(session: Session) -> McpServerPublic:
            merged = _fresh(session, server)
            details = {"was": str(merged.status)}
            merged.status, merged.updated_at = status, utcnow()
            store.record_change(
                session=session, actor=actor, action=action, server=merged, details=details
            )
            session.commit()
            return store.to_public(session=session, server=merged)

        saved = await self._db(save)
        self._changed(server)
        return saved

    async def approve(self, slug: str, actor: Actor, digest: str | None) -> McpServerPublic:
        """Approve the pending snapshot whose `digest` (`pending_digest`) the owner was shown;
        refused when another was filed since (the owner has not read that one)."""
        server = await self._managed(slug, actor)

        def save(session: Session) -> McpServerPublic:
            merged = _fresh(session, server)
            pending = store.pending_snapshot(session=session, server=merged)
            if pending is None:
                raise ConflictError(f"{slug!r} has no tool changes waiting for review.")
            if not digest:
                raise InvalidError(
                    "Give the digest of the pending snapshot you reviewed (pending_digest)."
                )
            if store.approval_digest(pending) != digest:
                raise ConflictError(
                    f"The tools of {slug!r} changed again since the snapshot you reviewed; "
                    "nothing was approved. Read the changes now waiting and approve those."
                )
            store.approve_pending(session=session, server=merged, actor=actor)
            return store.to_public(session=session, server=merged)

        saved = await self._db(save)
        self._changed(server)
        logger.info("%s approved the new tools of %s", actor.name, slug)
        return saved

    async def delete(self, slug: str, actor: Actor) -> None:
        server = await self._managed(slug, actor)
        await self._db(
            lambda s: store.delete_server(session=s, server=_fresh(s, server), actor=actor)
        )
        self._changed(server)

    def _changed(self, server: McpServer) -> None:
        self._callable.pop(server.slug, None)
        if server.id is not None:
            self.pool.forget(server.id)

    async def check(self, slug: str, actor: Actor) -> McpServerPublic:
        """Discover now (the owning team and admins); record health and any tool changes."""
        server = await self._managed(slug, actor)
        self._limit_check_now(server)
        await self._check(server)
        return await self.public(slug)

    def _limit_check_now(self, server: McpServer) -> None:
        assert server.id is not None
        now = time.monotonic()
        last = self._checked_now.get(server.id)
        if last is not None and now - last < self._check_now_interval_s:
            wait = math.ceil(self._check_now_interval_s - (now - last))
            raise TooSoonError(
                f"{server.slug!r} was checked moments ago; check it again in {wait} s (once per "
                f"{self._check_now_interval_s:g} s per server; the hub also checks every server "
                f"every {self._check_interval_s:g} s).",
                retry_after_s=wait,
            )
        self._checked_now[server.id] = now

    async def _check(self, server: McpServer) -> None:
        # One check at a time per server: a scheduled check and "check now" at the same moment
        # would otherwise both file the same tool change for review.
        lock = self._check_locks.setdefault(server.slug, asyncio.Lock())
        async with lock:
            try:
                await self._check_once(server)
            except NotFoundError:
                pass  # deleted while it was being checked

    async def _check_once(self, server: McpServer) -> None:
        try:
            discovery = await self._discover(self._endpoint(server))
        except (McpUnavailableError, AddressRefusedError) as error:
            # Everyone reads last_error: it says the kind of failure, the log says the rest.
            reason = error.public
            await self._db(
                lambda s: store.record_down(session=s, server=_fresh(s, server), error=reason)
            )
            if server.health != McpHealth.down:
                logger.warning("MCP server %s is down: %s", server.slug, error)
            self._changed(server)
            return
        changes = await self._db(
            lambda s: store.record_discovery(
                session=s, server=_fresh(s, server), discovery=discovery
            )
        )
        if changes:
            logger.warning("MCP server %s changed its tools: %s", server.slug, "; ".join(changes))
            self._changed(server)

    async def check_all(self) -> None:
        servers = await self._db(lambda s: store.list_servers(session=s))
        limit = asyncio.Semaphore(_CONCURRENT_CHECKS)

        async def one(server: McpServer) -> None:
            async with limit:
                await self._check(server)

        await asyncio.gather(*(one(s) for s in servers if s.status != McpStatus.disabled))

    async def _watch(self) -> None:
        # Every replica tries to lead at each interval; only the leader checks the servers.
        while True:
            await asyncio.sleep(self._check_interval_s)
            try:
                if await anyio.to_thread.run_sync(self._leader.is_leader):
                    await self.check_all()
            except Exception:
                logger.exception("MCP health checks failed; trying again next interval")

    async def _resolve(self, slug: str) -> _Callable:
        cached = self._callable.get(slug)
        if cached is not None and time.monotonic() - cached.read_at < _CALL_CACHE_TTL_S:
            return cached
        server = await self._server(slug)
        tools = await self._db(lambda s: store.offered_tools(session=s, server=server))
        assert server.id is not None
        entry = _Callable(
            server_id=server.id,
            version=f"{server.url}|{server.transport}|{server.auth_secret_encrypted}",
            endpoint=self._endpoint(server),
            tools=frozenset(tool["name"] for tool in tools),
            read_at=time.monotonic(),
        )
        if server.status != McpStatus.active:
            raise ConflictError(
                f"{slug!r} is {server.status.value.replace('_', ' ')}; its tools cannot be called.",
            )
        self._callable[slug] = entry
        return entry

    async def call_tool(
        self,
        slug: str,
        tool: str,
        arguments: dict[str, Any],
        caller: str,
        meta: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        target = await self._resolve(slug)
        if tool not in target.tools:
            offered = ", ".join(sorted(target.tools)) or "none"
            raise NotFoundError(f"{slug!r} offers no tool {tool!r}; it offers: {offered}.")
        record = ToolCallEntry(server_id=target.server_id, tool=tool, caller=caller)
        started = time.perf_counter()
        try:
            result = await self.pool.call_tool(
                server_id=target.server_id,
                version=target.version,
                endpoint=target.endpoint,
                tool=tool,
                arguments=arguments,
                meta=meta,
            )
        except McpUnavailableError as error:
            record.latency_ms = (time.perf_counter() - started) * 1000
            record.is_error, record.error = True, error.public[:1000]
            self.calls.add(record)
            logger.info("A call of %s on %s failed: %s", tool, slug, error)
            raise UpstreamError(f"The tool call failed: {error.public}") from error
        record.latency_ms = (time.perf_counter() - started) * 1000
        if result.get("isError"):
            text = " ".join(
                part.get("text", "") for part in result.get("content", ()) if part.get("text")
            )
            record.is_error, record.error = True, text[:1000] or "the tool reported an error"
        self.calls.add(record)
        return result
