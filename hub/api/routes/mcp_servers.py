"""The MCP server registry API: register, find, change, review, and call tools through the hub."""

from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import Response

from hub.api.deps import (
    CurrentActor,
    RegistryDep,
    SessionDep,
    get_actor,
    get_optional_actor,
    is_chat_app,
    service_of,
)
from hub.api.paging import PageDep
from hub.models.mcp_server import (
    McpApproval,
    McpServerCreate,
    McpServerPublic,
    McpServerUpdate,
    McpSnapshotPublic,
    McpStatus,
    ToolStats,
)
from hub.services import mcp_servers as store
from hub.state import HubState

__all__ = ["TOOL_CALL_PATH", "call_tool", "router"]

router = APIRouter(prefix="/api/mcp/servers", tags=["mcp servers"])

CONTEXT_KEYS = frozenset({"conversation", "agent", "trace"})


class ToolCallRequest(BaseModel):
    arguments: dict[str, Any] = Field(default_factory=dict)
    # The person the chat app's service (and only it) calls for, kept with the call's record.
    # From any other caller it is ignored: the call is made and recorded as the caller.
    on_behalf_of: str | None = Field(default=None, max_length=100)
    # Where the call comes from (conversation, agent, trace); the server gets it as MCP _meta.
    context: dict[str, str] = Field(default_factory=dict)

    @field_validator("context")
    @classmethod
    def _known_context(cls, context: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(context) - CONTEXT_KEYS)
        if unknown:
            raise ValueError(f"unknown context keys {unknown}; use {sorted(CONTEXT_KEYS)}")
        if any(len(value) > 100 for value in context.values()):
            raise ValueError("each context value is at most 100 characters")
        return context


async def call_tool(request: Request) -> Response:
    """POST /api/mcp/servers/{slug}/tools/{tool}/call, with a `ToolCallRequest` body: call a
    tool through the hub (which holds the server's secret). The answer is MCP's
    CallToolResult: `content`, `structuredContent` and `isError`.

    A plain Starlette endpoint rather than a FastAPI one: every tool call of every chat and
    agent passes here, and FastAPI's dependency resolution was the largest part of what the
    hub adds to a call. It authenticates and validates as the FastAPI routes do."""
    hub_state: HubState = request.app.state.hub
    actor = await get_actor(await get_optional_actor(request, hub_state))
    try:
        call = ToolCallRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from exc
    slug, tool = request.path_params["slug"], request.path_params["tool"]
    person = call.on_behalf_of if await _from_chat_app(request, hub_state, call) else None
    caller = actor.name if not person else f"{actor.name} for {person}"
    meta = {f"switchboard_{key}": value for key, value in call.context.items() if value}
    meta["switchboard_user"] = person or actor.name
    result = await hub_state.registry.call_tool(slug, tool, call.arguments, caller, meta=meta)
    return Response(orjson.dumps(result), media_type="application/json")


async def _from_chat_app(request: Request, hub_state: HubState, call: ToolCallRequest) -> bool:
    """Whether the call names a person and comes with the chat app's service token (the one
    caller that may act for a person); a signed-in person and every other service act as
    themselves. Asked again of the token, not of the actor, which the chat app's
    X-Switchboard-User header turns into the person."""
    if not call.on_behalf_of or not request.headers.get("authorization"):
        return False
    return is_chat_app(await service_of(request, hub_state))


# Added to the app ahead of the routers (hub/main.py).
TOOL_CALL_PATH = f"{router.prefix}/{{slug}}/tools/{{tool}}/call"


@router.post("", response_model=McpServerPublic, status_code=201)
async def register_server(
    server_in: McpServerCreate, actor: CurrentActor, registry: RegistryDep
) -> McpServerPublic:
    """Register a server: the hub connects, lists its tools, and refuses it if that fails."""
    return await registry.register(server_in, actor)


@router.get("", response_model=list[McpServerPublic])
def list_servers(
    actor: CurrentActor,
    session: SessionDep,
    page: PageDep,
    q: str | None = None,
    tag: str | None = None,
    team: str | None = None,
    status: McpStatus | None = None,
) -> list[McpServerPublic]:
    """Paged."""
    servers = store.list_servers(session=session, text=q, tag=tag, team=team, status=status)
    return [store.to_public(session=session, server=server) for server in page.of(servers)]


@router.get("/{slug}", response_model=McpServerPublic)
async def get_server(slug: str, actor: CurrentActor, registry: RegistryDep) -> McpServerPublic:
    return await registry.public(slug)


@router.patch("/{slug}", response_model=McpServerPublic)
async def update_server(
    slug: str, update: McpServerUpdate, actor: CurrentActor, registry: RegistryDep
) -> McpServerPublic:
    return await registry.update(slug, update, actor)


@router.post("/{slug}/disable", response_model=McpServerPublic)
async def disable_server(slug: str, actor: CurrentActor, registry: RegistryDep) -> McpServerPublic:
    return await registry.set_status(slug, McpStatus.disabled, actor)


@router.post("/{slug}/enable", response_model=McpServerPublic)
async def enable_server(slug: str, actor: CurrentActor, registry: RegistryDep) -> McpServerPublic:
    return await registry.set_status(slug, McpStatus.active, actor)


@router.post("/{slug}/approve", response_model=McpServerPublic)
async def approve_tools(
    slug: str, actor: CurrentActor, registry: RegistryDep, approval: McpApproval | None = None
) -> McpServerPublic:
    """Accept the tool changes the last check found, named by their `pending_digest`; the
    tools are offered again. 409 when the pending changes are no longer those."""
    return await registry.approve(slug, actor, approval.digest if approval else None)


@router.post("/{slug}/check", response_model=McpServerPublic)
async def check_server(slug: str, actor: CurrentActor, registry: RegistryDep) -> McpServerPublic:
    """Check health and tools now instead of at the next scheduled check (the owning team
    and admins)."""
    return await registry.check(slug, actor)


@router.delete("/{slug}", status_code=204)
async def delete_server(slug: str, actor: CurrentActor, registry: RegistryDep) -> Response:
    await registry.delete(slug, actor)
    return Response(status_code=204)


@router.get("/{slug}/snapshots", response_model=list[McpSnapshotPublic])
async def list_snapshots(
    slug: str, actor: CurrentActor, registry: RegistryDep, page: PageDep
) -> list[McpSnapshotPublic]:
    """What the server offered at each change, newest first, and who approved it. Paged."""
    return page.of(await registry.snapshots(slug))


@router.get("/{slug}/stats", response_model=list[ToolStats])
async def tool_stats(slug: str, actor: CurrentActor, registry: RegistryDep) -> list[ToolStats]:
    """Calls, error rate and median latency per tool over the last week."""
    return await registry.stats(slug)
