"""The tools of the MCP servers a person switched on, as the model sees them.

A model sees one flat list of functions, so each tool is named after its server and itself
(`weather__get_weather`), the same way as for agents; the index maps a name the model picked
back to both.
"""

from collections.abc import Iterable
from typing import Any

from agents.runtime import ToolSpec
from agents.runtime.hub_tools import ToolIndex
from app.hub_client import McpServerInfo

__all__ = ["SETTING_PREFIX", "enabled_servers", "setting_id", "toolbox"]

SETTING_PREFIX = "mcp:"


def setting_id(slug: str) -> str:
    return SETTING_PREFIX + slug


def enabled_servers(settings: dict[str, Any]) -> set[str]:
    return {
        key.removeprefix(SETTING_PREFIX)
        for key, value in settings.items()
        if key.startswith(SETTING_PREFIX) and value is True
    }


def toolbox(servers: Iterable[McpServerInfo], enabled: set[str]) -> ToolIndex:
    """The tools of the switched-on servers, named and described as the agent runtime does."""
    return ToolIndex(
        ToolSpec(
            server=server.slug,
            name=tool.name,
            description=f"[{server.name}] {tool.description}".strip(),
            input_schema=tool.input_schema,
        )
        for server in servers
        if server.slug in enabled
        for tool in server.tools
    )
