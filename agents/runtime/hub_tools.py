"""MCP tools as the model sees them (OpenAI function specs) and as the hub calls them.

Every tool call goes through the hub's call endpoint, which holds the server's secret; the
runtime never talks to an MCP server itself.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import orjson

from agents.runtime.connection import HubConnection
from agents.spec import ToolSpec

__all__ = [
    "HubToolClient",
    "ToolCaller",
    "ToolIndex",
    "ToolOutcome",
    "function_name",
    "path_segment",
]

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_NAME = 64
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def function_name(server: str, tool: str) -> str:
    """`{server}__{tool}` in the characters and length OpenAI accepts for a function name."""
    return _UNSAFE.sub("_", f"{server}__{tool}")[:_MAX_NAME]


def path_segment(value: str) -> str:
    """`value` as exactly one URL path segment: '/', '?', '#', '%' and the rest escaped, and
    a name of "." or ".." too (the HTTP client would take those as steps in the path). The
    hub's route decodes it back to `value`."""
    segment = quote(value, safe="")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    text: str
    is_error: bool
    # The tool's structured result (MCP structuredContent), when it gives one: what the chat
    # renders as a table and a chart.
    structured: dict[str, Any] | None = None


class ToolCaller(Protocol):
    async def call(
        self,
        *,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        user: str,
        context: Mapping[str, str] | None = None,
    ) -> ToolOutcome: ...


class ToolIndex:
    """The agent's tools by function name, with their OpenAI function specs."""

    def __init__(self, tools: Iterable[ToolSpec]) -> None:
        self.by_name: dict[str, ToolSpec] = {}
        self.functions: list[dict[str, Any]] = []
        for tool in tools:
            name = self._unique(function_name(tool.server, tool.name))
            self.by_name[name] = tool
            self.functions.append(
                {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": tool.description,
                        "parameters": tool.input_schema or _EMPTY_SCHEMA,
                    },
                }
            )

    def offers(self, server: str, tool: str) -> bool:
        return any(t.server == server and t.name == tool for t in self.by_name.values())

    def _unique(self, name: str) -> str:
        # Two tools can sanitize or truncate to the same name; number the later ones.
        candidate, n = name, 2
        while candidate in self.by_name:
            suffix = f"_{n}"
            candidate, n = name[: _MAX_NAME - len(suffix)] + suffix, n + 1
        return candidate


def _result_text(result: dict[str, Any]) -> str:
    parts: list[str] = []
    for item in result.get("content") or []:
        if item.get("type") == "text":
            parts.append(str(item.get("text", "")))
        else:
            parts.append(f"[{item.get('type', 'unknown')} content]")
    if not parts and result.get("structuredContent") is not None:
        return orjson.dumps(result["structuredContent"]).decode()
    return "\n".join(parts)


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if detail is None:
        detail = response.text[:500] or response.reason_phrase
    return detail if isinstance(detail, str) else orjson.dumps(detail).decode()


class HubToolClient:
    """Calls tools through `POST {hub}/api/mcp/servers/{server}/tools/{tool}/call` with one
    HTTP client. Every failure comes back as an error outcome, never as an exception, so the
    model can read what went wrong and try something else."""

    def __init__(self, hub: HubConnection, http: httpx.AsyncClient) -> None:
        self._base = hub.hub_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {hub.token}"}
        self._http = http

    async def call(
        self,
        *,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        user: str,
        context: Mapping[str, str] | None = None,
    ) -> ToolOutcome:
        # Server and tool names come from registered servers: escaped, they stay in their segment.
        url = f"{self._base}/api/mcp/servers/{path_segment(server)}/tools/{path_segment(tool)}/call"
        # The hub passes the context on to the server (MCP _meta), e.g. as warehouse labels.
        body = {
            "arguments": arguments,
            "on_behalf_of": user,
            "context": {key: value for key, value in (context or {}).items() if value},
        }
        try:
            response = await self._http.post(url, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            return ToolOutcome(f"Could not reach the hub to call {tool}: {exc!r}", True)
        if response.status_code != 200:
            return ToolOutcome(
                f"The hub refused the call to {tool} ({response.status_code}): {_detail(response)}",
                True,
            )
        try:
            result = response.json()
        except ValueError:
            return ToolOutcome(f"The hub's answer for {tool} was not JSON.", True)
        text = _result_text(result)
        if result.get("isError"):
            return ToolOutcome(f"The tool {tool} failed: {text}", True)
        structured = result.get("structuredContent")
        return ToolOutcome(text, False, structured if isinstance(structured, dict) else None)
