"""The tools of the MCP servers a person switched on, as the model sees them.

A model sees one flat list of functions, so each tool is named after its server and itself
(`weather__get_weather`); the toolbox maps a name the model picked back to both.
"""

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.gateway import McpServerInfo

__all__ = ["SETTING_PREFIX", "Toolbox", "enabled_servers", "function_name", "setting_id"]

SETTING_PREFIX = "mcp:"
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_NAME = 64  # OpenAI's limit on function names


def setting_id(slug: str) -> str:
    return SETTING_PREFIX + slug


def enabled_servers(settings: dict[str, Any]) -> set[str]:
    return {
        key.removeprefix(SETTING_PREFIX)
        for key, value in settings.items()
        if key.startswith(SETTING_PREFIX) and value is True
    }


def function_name(slug: str, tool: str) -> str:
    name = _UNSAFE.sub("_", f"{slug}__{tool}")
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9]}_{digest}"


@dataclass
class Toolbox:
    specs: list[dict[str, Any]] = field(default_factory=list)
    targets: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def build(cls, servers: Iterable[McpServerInfo], enabled: set[str]) -> "Toolbox":
        box = cls()
        for server in servers:
            if server.slug not in enabled:
                continue
            for tool in server.tools:
                name = function_name(server.slug, tool.name)
                box.targets[name] = (server.slug, tool.name)
                schema = tool.input_schema or {"type": "object", "properties": {}}
                box.specs.append(
                    {
                        "type": "function",
                        "function": {
                            "name": name,
                            "description": f"[{server.name}] {tool.description}".strip(),
                            "parameters": schema,
                        },
                    }
                )
        return box

    def target(self, name: str) -> tuple[str, str] | None:
        return self.targets.get(name)
