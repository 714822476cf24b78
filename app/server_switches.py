"""The chat's switches for MCP servers: one per active server, kept in the conversation's
settings as `mcp:{slug}`; the servers switched on are the tools of a chat with a model."""

from typing import Any

__all__ = ["SETTING_PREFIX", "enabled_servers", "setting_id"]

SETTING_PREFIX = "mcp:"


def setting_id(slug: str) -> str:
    return SETTING_PREFIX + slug


def enabled_servers(settings: dict[str, Any]) -> set[str]:
    return {
        key.removeprefix(SETTING_PREFIX)
        for key, value in settings.items()
        if key.startswith(SETTING_PREFIX) and value is True
    }
