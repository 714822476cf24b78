"""The OpenAI-compatible endpoints under /v1."""

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.api.deps import CurrentService, GatewayDep
from hub.gateway.chat_request import parse_chat_request
from hub.gateway.errors import GatewayError
from hub.models.mcp_server import SLUG_PATTERN

__all__ = ["AGENT_HEADER", "router"]

router = APIRouter(prefix="/v1", tags=["gateway"])

# Set by the agent runtime so usage is counted per agent as well as per service.
AGENT_HEADER = "x-switchboard-agent"
_AGENT_SLUG = re.compile(SLUG_PATTERN)


@router.post("/chat/completions")
async def chat_completions(
    request: Request, service: CurrentService, gateway: GatewayDep
) -> Response:
    chat = parse_chat_request(await request.body())
    agent = request.headers.get(AGENT_HEADER)
    if agent is not None and not _AGENT_SLUG.fullmatch(agent):
        raise GatewayError(
            400, f"{AGENT_HEADER} must be an agent's slug (lower-case letters, digits, dashes)."
        )
    return await gateway.complete(service=service, request=chat, agent=agent)


@router.get("/models")
async def list_models(service: CurrentService, gateway: GatewayDep) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": entry.name,
                "object": "model",
                "created": 0,
                "owned_by": "switchboard",
                "description": entry.description,
                "fallbacks": entry.fallbacks,
            }
            for entry in gateway.catalog.models
        ],
    }
