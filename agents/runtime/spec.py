"""What an agent run needs to know: the agent, its tools, and how to reach the hub."""

from dataclasses import dataclass
from typing import Any

from hub.models.actor import ActorKind

__all__ = ["AgentSpec", "HubConnection", "ToolSpec"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One MCP tool the agent may call, as the hub's registry describes it."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AgentSpec:
    slug: str
    version: int | None
    owner: str
    name: str
    instructions: str
    model: str
    tools: tuple[ToolSpec, ...]
    max_steps: int = 8
    max_tokens: int = 1024
    timeout_s: float = 120
    # The model's prices, for the cost recorded in traces.
    input_usd_per_million: float = 0.0
    output_usd_per_million: float = 0.0
    # Whose traces the runs are, as (kind, id) from the hub: the agent's owner, and the caller
    # the hub made this spec for, who runs it. An empty id is nobody (only admins read them).
    owner_kind: ActorKind = "user"
    owner_id: str = ""
    user_kind: ActorKind = "user"
    user_id: str = ""
    # The model calls tools (the catalog says so); an agent with tools needs one that does.
    model_calls_tools: bool = True

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_usd_per_million + output_tokens * self.output_usd_per_million
        ) / 1_000_000


@dataclass(frozen=True, slots=True)
class HubConnection:
    """Where the hub is, and the token the runtime uses for the gateway and for tool calls
    (the chat app's service token)."""

    hub_url: str
    token: str
