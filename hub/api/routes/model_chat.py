"""A chat with a model, run by the agent runtime as an agent with no instructions of its own:
what the runtime needs to run it for the person, with the MCP servers they switched on."""

from typing import Annotated

from fastapi import APIRouter, Query

from agents.spec import AgentSpec
from hub.api.deps import CurrentActor
from hub.api.routes.agents import AgentCatalogDep
from hub.core.errors import InvalidError

__all__ = ["router"]

router = APIRouter(prefix="/api/model-chat", tags=["agents"])

# More switches than any chat shows; a longer list is a mistake, not a chat.
MAX_SERVERS = 50


@router.get("/run-spec", response_model=AgentSpec)
async def model_chat_run_spec(
    actor: CurrentActor,
    agents: AgentCatalogDep,
    model: Annotated[str, Query(min_length=1, max_length=200)],
    server: Annotated[list[str] | None, Query(description="an MCP server switched on")] = None,
) -> AgentSpec:
    """The model, its prices and capabilities, and the tools of the switched-on servers that
    are active (the others are listed in `unavailable_servers`)."""
    servers = list(dict.fromkeys(server or []))
    if len(servers) > MAX_SERVERS:
        raise InvalidError(f"Switch on at most {MAX_SERVERS} MCP servers in one chat.")
    return await agents.model_chat_spec(model, servers, actor)
