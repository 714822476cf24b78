"""What a running hub holds between requests: settings, database engine, gateway, registry."""

from dataclasses import dataclass

from sqlalchemy import Engine

from hub.core.config import Settings
from hub.gateway.proxy import Gateway
from hub.mcp.registry import McpRegistry
from hub.services.services import TokenResolver
from hub.services.usage import UsageRecorder

__all__ = ["HubRuntime"]


@dataclass
class HubRuntime:
    settings: Settings
    engine: Engine
    tokens: TokenResolver
    recorder: UsageRecorder
    gateway: Gateway
    registry: McpRegistry
