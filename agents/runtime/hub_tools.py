"""MCP tools as the model sees them (OpenAI function specs), and what calls them.

Every tool call goes through the hub's call endpoint (`HubClient.call_tool`), which holds the
server's secret; the runtime never talks to an MCP server itself.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from agents.hub_client import ToolOutcome
from agents.spec import ToolSpec

__all__ = ["ToolCaller", "ToolIndex", "function_name"]

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_NAME = 64
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def function_name(server: str, tool: str) -> str:
    """`{server}__{tool}` in the characters and length OpenAI accepts for a function name."""
    return _UNSAFE.sub("_", f"{server}__{tool}")[:_MAX_NAME]


class ToolCaller(Protocol):
    """What calls tools for the runtime: the hub's client (`HubClient`), or a stand-in in a
    benchmark."""

    async def call_tool(
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
