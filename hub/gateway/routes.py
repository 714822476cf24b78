"""The OpenAI-compatible endpoints under /v1."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.api.deps import CurrentService, GatewayDep
from hub.gateway.chat_request import parse_chat_request

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["gateway"])


@router.post("/chat/completions")
async def chat_completions(
    request: Request, service: CurrentService, gateway: GatewayDep
) -> Response:
    chat = parse_chat_request(await request.body())
    return await gateway.complete(service=service, request=chat)


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
