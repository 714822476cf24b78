"""What a run needs to know, in one typed shape: the hub makes it (for a published agent, an
owner's draft, or a chat with a model) and the agent runtime runs it."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MODEL_CHAT", "ActorKind", "AgentSpec", "ToolSpec"]

# Who acts: a person signed in, or a service with its token.
ActorKind = Literal["user", "service"]

# The slug of a chat with a model: an agent with no instructions of its own, which no agent
# slug can be (agent slugs start with a letter or digit).
MODEL_CHAT = ""


class ToolSpec(BaseModel):
    """One MCP tool the agent may call, as the hub's registry describes it."""

    model_config = ConfigDict(frozen=True)

    server: str
    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)


class AgentSpec(BaseModel):
    """An agent's version (or its owner's draft, or a chat with a model) as the runtime runs
    it, and whose its traces are: the agent's owner and the caller the hub made it for."""

    model_config = ConfigDict(frozen=True)

    slug: str
    name: str
    description: str = ""
    owner: str
    owner_kind: ActorKind = "user"
    owner_id: str = ""
    user_kind: ActorKind = "user"
    user_id: str = ""
    team: str = ""
    version: int | None = Field(default=None, description="the version number; null for a draft")
    is_draft: bool = False
    instructions: str = ""
    model: str
    starters: list[str] = Field(default_factory=list)
    max_steps: int = 8
    # None: the model's own limit (a chat with a model sets none).
    max_tokens: int | None = 1024
    timeout_s: float = 120
    tools: tuple[ToolSpec, ...] = ()
    # Selected servers whose tools are not offered now (disabled, or waiting for review).
    unavailable_servers: list[str] = Field(default_factory=list)
    model_available: bool = True
    # The model calls tools (its catalog entry says so); an agent with tools needs one that does.
    model_calls_tools: bool = True
    # The model's prices, for the cost recorded in traces.
    input_usd_per_million: float = 0.0
    output_usd_per_million: float = 0.0

    @property
    def is_model_chat(self) -> bool:
        return self.slug == MODEL_CHAT

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_usd_per_million + output_tokens * self.output_usd_per_million
        ) / 1_000_000
