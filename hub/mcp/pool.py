"""Kept-open MCP sessions for tool calls through the hub.

Opening a session costs several round trips (initialize, initialized, and the session's end),
so the hub keeps one session per server and sends every tool call for that server on it; MCP
sessions take concurrent requests.

A streamable-HTTP server gets an `HttpSession`: each call is one POST on a connection of the
pool's one aiohttp client. A server on the older SSE transport gets an SDK client session,
which lives in its own task (where the SDK's transport must be entered and left). A session
that fails is dropped, and the next call opens a new one.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import anyio
from mcp import ClientSession, types
from mcp.shared.exceptions import McpError

from hub.mcp.client import Endpoint, McpUnavailableError, open_session
from hub.mcp.http_session import HttpSession, guarded_http
from hub.mcp.netguard import NetworkPolicy
from hub.models.mcp_server import McpTransport

__all__ = ["SessionPool"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Key:
    server_id: int
    # A new URL, transport or secret gets a new session.
    version: str


class _Pooled:
    def __init__(self) -> None:
        self.session: ClientSession | None = None
        self.error: BaseException | None = None
        self.ready = asyncio.Event()
        self.closed = asyncio.Event()
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def usable(self) -> bool:
        return self.session is not None and not self.closed.is_set()


class SessionPool:
    def __init__(
        self, *, policy: NetworkPolicy, connect_timeout_s: float, call_timeout_s: float
    ) -> None:
        self._policy = policy
        self._connect_timeout_s = connect_timeout_s
        self._call_timeout_s = call_timeout_s
        self._sessions: dict[int, tuple[_Key, _Pooled]] = {}
        self._lock = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None
        self._direct: dict[int, tuple[_Key, HttpSession]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def _hold(self, endpoint: Endpoint, pooled: _Pooled) -> None:
        try:
            async with open_session(
                endpoint,
                policy=self._policy,
                connect_timeout_s=self._connect_timeout_s,
                read_timeout_s=self._call_timeout_s,
            ) as session:
                pooled.session = session
                pooled.ready.set()
                await pooled.stop.wait()
        except McpUnavailableError as error:
            pooled.error = error
        except asyncio.CancelledError:
            raise
        finally:
            pooled.closed.set()
            pooled.ready.set()

    async def _session(self, server_id: int, version: str, endpoint: Endpoint) -> _Pooled:
        key = _Key(server_id, version)
        async with self._lock:
            current = self._sessions.get(server_id)
            if current is not None and current[0] == key and not current[1].closed.is_set():
                pooled = current[1]
            else:
                if current is not None:
                    current[1].stop.set()
                pooled = _Pooled()
                pooled.task = asyncio.create_task(
                    self._hold(endpoint, pooled), name=f"mcp-session-{server_id}"
                )
                self._sessions[server_id] = (key, pooled)
        try:
            with anyio.fail_after(self._connect_timeout_s * 2):
                await pooled.ready.wait()
        except TimeoutError as error:
            pooled.stop.set()
            raise McpUnavailableError(f"{endpoint.url} did not open a session in time") from error
        if not pooled.usable:
            failed = pooled.error
            if isinstance(failed, McpUnavailableError):
                raise McpUnavailableError(str(failed), public=failed.public)
            raise McpUnavailableError(f"{endpoint.url} closed the session")
        return pooled

    def _http_session(self, server_id: int, version: str, endpoint: Endpoint) -> HttpSession:
        key = _Key(server_id, version)
        current = self._direct.get(server_id)
        if current is not None and current[0] == key:
            return current[1]
        if current is not None:
            self._close_later(current[1])
        if self._http is None:
            self._http = guarded_http(self._policy, connect_timeout_s=self._connect_timeout_s)
        session = HttpSession(
            self._http,
            endpoint,
            policy=self._policy,
            connect_timeout_s=self._connect_timeout_s,
            call_timeout_s=self._call_timeout_s,
        )
        self._direct[server_id] = (key, session)
        return session

    def _close_later(self, session: HttpSession) -> None:
        task = asyncio.create_task(session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def call_tool(
        self,
        *,
        server_id: int,
        version: str,
        endpoint: Endpoint,
        tool: str,
        arguments: dict[str, Any],
        meta: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Call `tool` and return the server's CallToolResult as JSON; raise
        `McpUnavailableError` when the server cannot be reached or refuses the request."""
        if endpoint.transport == McpTransport.streamable_http:
            session = self._http_session(server_id, version, endpoint)
            return await session.call_tool(tool, arguments, meta)
        result = await self._sdk_call_tool(server_id, version, endpoint, tool, arguments, meta)
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)

    async def _sdk_call_tool(
        self,
        server_id: int,
        version: str,
        endpoint: Endpoint,
        tool: str,
        arguments: dict[str, Any],
        meta: dict[str, str] | None,
    ) -> types.CallToolResult:
        for attempt in (1, 2):
            pooled = await self._session(server_id, version, endpoint)
            assert pooled.session is not None
            try:
                # send_request, not call_tool: the hub passes results on, and checking them
                # against the tool's output schema (the caller's job) would cost ms per call.
                return await pooled.session.send_request(
                    types.ClientRequest(
                        types.CallToolRequest(
                            params=types.CallToolRequestParams(
                                name=tool,
                                arguments=arguments,
                                _meta=types.RequestParams.Meta(**meta) if meta else None,
                            )
                        )
                    ),
                    types.CallToolResult,
                    request_read_timeout_seconds=timedelta(seconds=self._call_timeout_s),
                )
            except McpError as error:
                # A session the server forgot (it restarted) is refused before the tool runs,
                # so one retry on a fresh session cannot run the tool twice.
                forgotten = "terminated" in str(error) or "closed" in str(error).lower()
                if attempt == 1 and (pooled.closed.is_set() or forgotten):
                    pooled.stop.set()
                    continue
                if "timed out" in str(error).lower():
                    raise McpUnavailableError(
                        f"{tool} did not answer within {self._call_timeout_s:.0f} s"
                    ) from error
                raise McpUnavailableError(f"{endpoint.url}: {error.error.message}") from error
            except (anyio.ClosedResourceError, anyio.EndOfStream, anyio.BrokenResourceError):
                # The session ended under this call (the transport failed).
                pooled.stop.set()
                if attempt == 2:
                    raise McpUnavailableError(
                        f"{endpoint.url} closed the session during the call"
                    ) from None
        raise McpUnavailableError(f"{endpoint.url} keeps closing its session")

    def forget(self, server_id: int) -> None:
        """Close the session of a server that changed, was disabled or went down."""
        current = self._sessions.pop(server_id, None)
        if current is not None:
            current[1].stop.set()
        direct = self._direct.pop(server_id, None)
        if direct is not None:
            self._close_later(direct[1])

    async def close(self) -> None:
        tasks = []
        for _, pooled in self._sessions.values():
            pooled.stop.set()
            if pooled.task is not None:
                tasks.append(pooled.task)
        self._sessions.clear()
        for _, session in self._direct.values():
            self._close_later(session)
        self._direct.clear()
        tasks.extend(self._closing)
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._http is not None:
            await self._http.close()
            self._http = None
