"""Tool calls over streamable HTTP, spoken directly: one JSON-RPC POST a call.

The SDK's client session routes every message through memory streams, a writer task and
pydantic models of each JSON-RPC message, which costs a few ms of CPU a call. A tool call
needs none of that: the hub POSTs `tools/call` with the session's id on a pooled aiohttp
connection and reads the answer, a JSON body or an SSE stream. The session is opened the same
way (`initialize`, then `notifications/initialized`); discovery and health checks keep using
the SDK (`hub.mcp.discovery`), and so do servers on the older SSE transport.

Network safety is the same as the SDK path's: the URL is checked when the session opens, a
host name is resolved and checked at every new connection (`GuardedResolver`) and the
connection goes to the address that was checked, no redirect is followed, no cookie is kept,
and every request has a deadline.
"""

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from mcp import types
from mcp.shared.version import SUPPORTED_PROTOCOL_VERSIONS
from pydantic import ValidationError

from hub.core.request_ids import REQUEST_ID_HEADER, current_request_id
from hub.mcp.client import Endpoint, McpUnavailableError, unavailable
from hub.mcp.netguard import (
    MAX_MESSAGE_BYTES,
    AddressRefusedError,
    GuardedResolver,
    NetworkPolicy,
    check_url_syntax,
    parse_ip_literal,
)

__all__ = ["MAX_MESSAGE_BYTES", "HttpSession", "guarded_http"]

logger = logging.getLogger(__name__)

_JSON = "application/json"
_SSE = "text/event-stream"
_CLIENT_INFO = {"name": "switchboard-hub", "version": "1"}
# After its answer, a server should end the call's SSE stream (in well under a ms); reading to
# that end lets the connection be used again. One that keeps it open loses the connection.
_DRAIN_S = 0.1
# How long closing a session (DELETE) may take; it is a courtesy to the server.
_CLOSE_S = 2.0


class _SessionGone(Exception):
    """404 for our session id: the server restarted or expired the session."""


class _TooLarge(Exception):
    """The server sent more than MAX_MESSAGE_BYTES in one message."""


def guarded_http(policy: NetworkPolicy, *, connect_timeout_s: float) -> aiohttp.ClientSession:
    """One aiohttp client for every server: checked connections, no cookies, no environment."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(policy),
        use_dns_cache=False,  # every new connection is resolved and checked again
        limit=0,
        limit_per_host=100,
        keepalive_timeout=4,  # below uvicorn's 5 s, so the server is not the one to close it
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(sock_connect=connect_timeout_s, connect=connect_timeout_s),
    )


def _message(data: bytes) -> dict[str, Any]:
    message = orjson.loads(data)
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise ValueError("not a JSON-RPC 2.0 message")
    return message


async def _sse_messages(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The JSON-RPC messages of an SSE stream, as its `message` events arrive."""
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        if len(buffer) > MAX_MESSAGE_BYTES:
            raise _TooLarge
        while True:
            end, size = _event_end(buffer)
            if end < 0:
                break
            event, buffer = buffer[:end], buffer[end + size :]
            data = _event_data(event)
            if data is not None:
                yield _message(data)


async def _body(response: aiohttp.ClientResponse) -> bytes:
    if (response.content_length or 0) > MAX_MESSAGE_BYTES:
        raise _TooLarge
    body = b""
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > MAX_MESSAGE_BYTES:
            raise _TooLarge
    return body


def _event_end(buffer: bytes) -> tuple[int, int]:
    """Where the first complete event ends (a blank line), and the length of that break."""
    found = [(buffer.find(sep), len(sep)) for sep in (b"\r\n\r\n", b"\n\n", b"\r\r")]
    found = [hit for hit in found if hit[0] >= 0]
    return min(found) if found else (-1, 0)


def _event_data(event: bytes) -> bytes | None:
    """The data of a `message` event, or None for another event or one without data."""
    kind, data = b"message", []
    for line in event.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        name, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if name == b"event":
            kind = value
        elif name == b"data":
            data.append(value)
    if kind != b"message" or not data or not any(data):
        return None  # another kind of event, or a priming event (an id and no data)
    return b"\n".join(data)


def _reply_to_server(request: dict[str, Any]) -> dict[str, Any]:
    """What the SDK's client session answers a server's request when it has no callbacks."""
    if request.get("method") == "ping":
        return {"jsonrpc": "2.0", "id": request["id"], "result": {}}
    error = {"code": types.INVALID_REQUEST, "message": f"{request.get('method')} not supported"}
    return {"jsonrpc": "2.0", "id": request["id"], "error": error}


class HttpSession:
    """An MCP session on a streamable-HTTP server, used for tool calls."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        endpoint: Endpoint,
        *,
        policy: NetworkPolicy,
        connect_timeout_s: float,
        call_timeout_s: float,
    ) -> None:
        self._http = http
        self._endpoint = endpoint
        self._policy = policy
        self._connect_timeout_s = connect_timeout_s
        self._call_timeout_s = call_timeout_s
        self._ids = itertools.count(1)
        self._session_id: str | None = None
        self._opened = False
        self._lock = asyncio.Lock()
        self._base_headers = {
            **endpoint.headers,
            "accept": f"{_JSON}, {_SSE}",
            "content-type": _JSON,
        }
        self._headers = self._base_headers

    @property
    def url(self) -> str:
        return self._endpoint.url

    async def open(self) -> None:
        """Open the session unless it is open (one `initialize` however many callers wait)."""
        if not self._opened:
            async with self._lock:
                if not self._opened:
                    await self._initialize()

    async def _reopen(self, stale: str | None) -> None:
        async with self._lock:
            if self._session_id == stale:  # no other call has re-opened it meanwhile
                self._opened = False
                await self._initialize()

    async def _initialize(self) -> None:
        # An address literal cannot resolve elsewhere later, so it is checked here, at every
        # (re)opening; a name is checked by the resolver at every new connection.
        host = check_url_syntax(self.url).host
        literal = parse_ip_literal(host)
        if literal is not None:
            self._policy.check_ip(literal, host=host)
        params = {
            "protocolVersion": types.LATEST_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": _CLIENT_INFO,
        }
        timeout = self._connect_timeout_s + self._call_timeout_s
        reply, session_id = await self._request(
            "initialize", params, timeout_s=timeout, headers=self._base_headers
        )
        try:
            result = types.InitializeResult.model_validate(reply)
        except ValidationError as error:
            raise McpUnavailableError(f"{self.url} did not answer initialize as MCP") from error
        version = str(result.protocolVersion)
        if version not in SUPPORTED_PROTOCOL_VERSIONS:
            raise McpUnavailableError(f"{self.url} speaks MCP {version}, which the hub does not")
        headers = {**self._base_headers, "mcp-protocol-version": version}
        if session_id:
            headers["mcp-session-id"] = session_id
        body = orjson.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await self._post(body, timeout, headers=headers, expect_reply=False)
        # Calls in flight on the old session meanwhile get 404 and come back for this one.
        self._session_id, self._headers, self._opened = session_id, headers, True

    async def call_tool(
        self, tool: str, arguments: dict[str, Any], meta: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """The server's CallToolResult as it sent it. A tool's own failure is a result with
        `isError`; anything else (a JSON-RPC error, a transport failure) raises
        `McpUnavailableError` with a message for a person."""
        params: dict[str, Any] = {"name": tool, "arguments": arguments}
        if meta:
            params["_meta"] = meta
        try:
            await self.open()
        except TimeoutError:
            raise McpUnavailableError(f"{self.url} did not answer in time") from None
        except (AddressRefusedError, aiohttp.ClientError, OSError) as error:
            raise unavailable(error, self.url) from error
        try:
            result = await self._call(params)
        except TimeoutError:
            raise McpUnavailableError(
                f"{tool} did not answer within {self._call_timeout_s:g} s"
            ) from None
        except (AddressRefusedError, aiohttp.ClientError, OSError) as error:
            raise unavailable(error, self.url) from error
        try:
            types.CallToolResult.model_validate(result)
        except ValidationError as error:
            raise McpUnavailableError(
                f"{self.url} answered {tool} with something that is not a tool result"
            ) from error
        return result

    async def _call(self, params: dict[str, Any]) -> dict[str, Any]:
        reopened = reconnected = False
        while True:
            session_id = self._session_id
            try:
                result, _ = await self._request(
                    "tools/call", params, timeout_s=self._call_timeout_s
                )
                return result
            except _SessionGone:
                # Refused before the tool ran, so calling again on a new session is safe.
                if reopened:
                    raise McpUnavailableError(f"{self.url} keeps forgetting its session") from None
                reopened = True
                await self._reopen(session_id)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as error:
                # A kept-alive connection the server had closed (it restarted): once more on
                # a new connection. Failing to connect at all is not worth a second try.
                if reconnected or isinstance(error, aiohttp.ClientConnectorError):
                    raise
                reconnected = True

    async def close(self) -> None:
        """End the session at the server (DELETE), as the SDK does; failures are ignored."""
        if not self._opened or not self._session_id:
            return
        self._opened = False
        try:
            async with self._http.delete(
                self.url,
                headers=self._headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=_CLOSE_S),
            ):
                pass
        except (aiohttp.ClientError, OSError, TimeoutError, AddressRefusedError):
            logger.debug("closing the MCP session at %s failed", self.url)

    async def _request(
        self,
        method: str,
        params: dict[str, Any],
        *,
        timeout_s: float,
        headers: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], str | None]:
        request_id = next(self._ids)
        body = orjson.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        )
        sent = headers or self._headers
        if traced := current_request_id():
            # The id of the hub request this call is made for, so the server's logs match.
            sent = {REQUEST_ID_HEADER: traced, **sent}
        message, session_id = await self._post(
            body, timeout_s, headers=sent, expect_reply=True, id=request_id
        )
        if "error" in message:
            error = message["error"]
            text = error.get("message") if isinstance(error, dict) else None
            raise McpUnavailableError(f"{self.url}: {text or 'the server answered with an error'}")
        result = message.get("result")
        if not isinstance(result, dict):
            raise McpUnavailableError(f"{self.url} answered {method} without a result")
        return result, session_id

    async def _post(
        self,
        body: bytes,
        timeout_s: float,
        *,
        headers: dict[str, str],
        expect_reply: bool,
        id: int | None = None,
    ) -> tuple[dict[str, Any], str | None]:
        async with self._http.post(
            self.url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s, sock_connect=self._connect_timeout_s),
        ) as response:
            status = response.status
            if status == 404 and "mcp-session-id" in headers:
                raise _SessionGone
            if status >= 300 or (status == 202 and expect_reply):
                raise McpUnavailableError(
                    f"{self.url} answered HTTP {status} {response.reason or ''}: it does not "
                    "look like an MCP endpoint. Check the path (often /mcp, or /sse for SSE) "
                    "and the transport."
                )
            if not expect_reply:
                return {}, None
            session_id = response.headers.get("mcp-session-id")
            kind = response.headers.get("content-type", "").lower()
            try:
                if kind.startswith(_JSON):
                    return self._parsed(await _body(response)), session_id
                if kind.startswith(_SSE):
                    return await self._from_stream(response, id), session_id
            except _TooLarge:
                raise McpUnavailableError(
                    f"{self.url} sent a message over {MAX_MESSAGE_BYTES // 2**20} MiB"
                ) from None
            raise McpUnavailableError(f"{self.url} answered with content type {kind!r}")

    def _parsed(self, data: bytes) -> dict[str, Any]:
        try:
            return _message(data)
        except ValueError as error:
            raise McpUnavailableError(f"{self.url} did not answer with JSON-RPC") from error

    async def _from_stream(
        self, response: aiohttp.ClientResponse, id: int | None
    ) -> dict[str, Any]:
        try:
            async for message in _sse_messages(response):
                if message.get("id") == id and "method" not in message:
                    await self._drain(response)
                    return message
                if "method" in message and "id" in message:
                    await self._answer(message)
                # Notifications (progress, log lines) are not passed on.
        except ValueError as error:
            raise McpUnavailableError(f"{self.url} sent an event that is not JSON-RPC") from error
        raise McpUnavailableError(f"{self.url} ended the stream without answering")

    async def _drain(self, response: aiohttp.ClientResponse) -> None:
        try:
            async with asyncio.timeout(_DRAIN_S):
                while await response.content.readany():
                    pass
        except (TimeoutError, aiohttp.ClientError):
            response.close()

    async def _answer(self, request: dict[str, Any]) -> None:
        """Answer a request the server sent mid-call (ping, sampling...)."""
        body = orjson.dumps(_reply_to_server(request))
        await self._post(body, self._connect_timeout_s, headers=self._headers, expect_reply=False)
