"""How the agent runtime reaches the hub."""

from dataclasses import dataclass

__all__ = ["HubConnection"]


@dataclass(frozen=True, slots=True)
class HubConnection:
    """Where the hub is, and the token the runtime uses for the gateway and for tool calls
    (the chat app's service token)."""

    hub_url: str
    token: str
