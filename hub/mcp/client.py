"""Opening an MCP client session to a registered server, safely.

Every HTTP request goes through the network guard (checked and pinned address, no redirects
off the server's origin), every step has a deadline, and a transport failure ends the
session at once with a message that says what failed, instead of leaving a request to wait
for its time-out.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp
import anyio
import httpx
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

from hub.mcp.netguard import (
    AddressRefusedError,
    MessageTooLargeError,
    NetworkPolicy,
    guarded_client,
)
from hub.models.mcp_server import McpTransport

__all__ = ["Endpoint", "McpUnavailableError", "describe_failure", "open_session", "unavailable"]


class McpUnavailableError(Exception):
    """The server could not be reached or did not speak MCP; `str()` says what failed.
    `public` says which kind of failure it was without what the network layer reported
    (addresses a name resolved to): for members; the full message is for the log and admins."""

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or message


def unavailable(error: BaseException, url: str) -> McpUnavailableError:
    """The `McpUnavailableError` for `error`, met talking to the server at `url`."""
    return McpUnavailableError(
        describe_failure(error, url), public=describe_failure(error, url, public=True)
    )


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    transport: McpTransport
    # Includes the server's header secret: never log or return an Endpoint.
    headers: dict[str, str] = field(default_factory=dict, repr=False)


def _leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def describe_failure(error: BaseException, url: str, *, public: bool = False) -> str:
    """A sentence for a person: what went wrong talking to the server at `url`. With `public`,
    only the kind of failure, without the text of the network layer (which may hold the
    addresses a name resolved to)."""
    error = _leaf(error)
    if isinstance(error, AddressRefusedError):
        return error.public if public else str(error)
    if isinstance(error, MessageTooLargeError):
        return str(error)
    if isinstance(error, httpx.ConnectError | aiohttp.ClientConnectorError):
        if public and str(error).startswith("Could not resolve"):  # netguard's words
            return f"could not connect to {url}: its host name does not resolve"
        if public:
            return f"could not connect to {url} (connection refused); is it running?"
        return f"could not connect to {url} ({error or 'connection refused'}); is it running?"
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return f"{url} did not answer in time"
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        return (
            f"{url} answered HTTP {status} {error.response.reason_phrase}: it does not look "
            "like an MCP endpoint. Check the path (often /mcp, or /sse for SSE) and the transport."
        )
    if isinstance(error, McpError):
        return f"{url} answered with an MCP error: {error.error.message}"
    detail = "" if public else f": {error}"
    if isinstance(
        error, httpx.HTTPError | aiohttp.ClientError | OSError | anyio.BrokenResourceError
    ):
        return f"the connection to {url} failed: {type(error).__name__}{detail}"
    return f"{url} did not speak MCP: {type(error).__name__}{detail}"


class _FailFast:
    """Cancels the session's scope when the transport reports an error, and keeps the error."""

    def __init__(self, scope: anyio.CancelScope) -> None:
        self.scope = scope
        self.error: Exception | None = None

    async def __call__(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.fail(message)

    def fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
            self.scope.cancel()


@asynccontextmanager
async def _streams(
    endpoint: Endpoint,
    policy: NetworkPolicy,
    connect_timeout_s: float,
    read_timeout_s: float,
    fail_fast: _FailFast,
) -> AsyncIterator[tuple[Any, Any]]:
    timeout = httpx.Timeout(connect_timeout_s, read=read_timeout_s)
    if endpoint.transport == McpTransport.sse:
        factory = partial(guarded_client, policy, on_too_large=fail_fast.fail)
        async with sse_client(
            endpoint.url,
            headers=endpoint.headers,
            timeout=connect_timeout_s,
            sse_read_timeout=read_timeout_s,
            httpx_client_factory=factory,
        ) as (read, write):
            yield read, write
        return
    client = guarded_client(
        policy, headers=endpoint.headers, timeout=timeout, on_too_large=fail_fast.fail
    )
    async with client, streamable_http_client(endpoint.url, http_client=client) as (read, write, _):
        yield read, write


@asynccontextmanager
async def open_session(
    endpoint: Endpoint,
    *,
    policy: NetworkPolicy,
    connect_timeout_s: float,
    read_timeout_s: float,
) -> AsyncIterator[ClientSession]:
    """An initialized session. A transport failure cancels the body and raises
    `McpUnavailableError`; so does a failure to connect or to initialize."""
    with anyio.CancelScope() as scope:
        fail_fast = _FailFast(scope)
        try:
            async with (
                _streams(endpoint, policy, connect_timeout_s, read_timeout_s, fail_fast) as (
                    read,
                    write,
                ),
                ClientSession(read, write, message_handler=fail_fast) as session,
            ):
                with anyio.fail_after(connect_timeout_s + read_timeout_s):
                    await session.initialize()
                yield session
        except (
            AddressRefusedError,
            McpError,
            httpx.HTTPError,
            OSError,
            TimeoutError,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            ExceptionGroup,
        ) as error:
            raise unavailable(error, endpoint.url) from error
    if fail_fast.error is not None:
        raise unavailable(fail_fast.error, endpoint.url)
