"""The prompt library API: make a prompt (with v1), add versions, choose production, roll
back, compare two versions, and try a prompt in the playground. A service calls a prompt by
name at `POST /v1/prompts/{name}/completions` (hub/gateway/routes.py)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import JSONResponse, Response

from hub.api.deps import CurrentActor, HubStateDep, RowId
from hub.api.paging import PageDep
from hub.core.config import PLAYGROUND_SERVICE_NAME
from hub.core.roles import Permission
from hub.gateway.prompt_calls import PromptCall, render_request, variable_values
from hub.gateway.prompt_tools import PromptTools
from hub.models.eval_gate import GateCheckPublic
from hub.models.prompt import (
    PlaygroundRun,
    ProductionChange,
    PromptCreate,
    PromptDefinition,
    PromptDiff,
    PromptListItem,
    PromptPublic,
    PromptVersionPublic,
)
from hub.prompt_library import PromptLibrary
from hub.services.service_accounts import ServiceIdentity

__all__ = ["PromptLibraryDep", "playground_router", "router"]


async def get_prompt_library(hub_state: HubStateDep) -> PromptLibrary:
    return PromptLibrary(
        engine=hub_state.engine,
        models=hub_state.gateway.catalog,
        usage=hub_state.recorder,
        resolver=hub_state.prompts,
    )


PromptLibraryDep = Annotated[PromptLibrary, Depends(get_prompt_library)]

router = APIRouter(prefix="/api/prompts", tags=["prompts"])


@router.post("", response_model=PromptPublic, status_code=201)
async def create_prompt(
    prompt_in: PromptCreate, actor: CurrentActor, prompts: PromptLibraryDep
) -> PromptPublic:
    """Make a prompt for one of the caller's teams; its first version is production."""
    return await prompts.create(prompt_in, actor)


@router.get("", response_model=list[PromptListItem])
async def list_prompts(
    _: CurrentActor,
    prompts: PromptLibraryDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    team: Annotated[str | None, Query(max_length=100)] = None,
) -> list[PromptListItem]:
    """Every prompt with its team and production version, and its calls by name and their cost
    in the last 7 days, searched by `q` in name and description. Paged."""
    return page.of(await prompts.find(q, team))


@router.get("/{name}", response_model=PromptPublic)
async def get_prompt(name: str, _: CurrentActor, prompts: PromptLibraryDep) -> PromptPublic:
    """The prompt, its production version and the variables that version takes."""
    return await prompts.get(name)


@router.post("/{name}/versions", response_model=PromptVersionPublic, status_code=201)
async def add_version(
    name: str, definition: PromptDefinition, actor: CurrentActor, prompts: PromptLibraryDep
) -> PromptVersionPublic:
    """Freeze a new version (the next number); production stays where it is."""
    return await prompts.add_version(name, definition, actor)


@router.get("/{name}/versions", response_model=list[PromptVersionPublic])
async def list_versions(
    name: str, _: CurrentActor, prompts: PromptLibraryDep, page: PageDep
) -> list[PromptVersionPublic]:
    """Every version, newest first. Paged."""
    return page.of(await prompts.versions(name))


@router.get("/{name}/versions/{number}", response_model=PromptVersionPublic)
async def get_version(
    name: str, number: RowId, _: CurrentActor, prompts: PromptLibraryDep
) -> PromptVersionPublic:
    return await prompts.version(name, number)


@router.post(
    "/{name}/production",
    response_model=PromptPublic,
    responses={202: {"model": GateCheckPublic, "description": "a gate check was started"}},
)
async def make_production(
    name: str, change: ProductionChange, actor: CurrentActor, prompts: PromptLibraryDep
) -> PromptPublic | Response:
    """Make a version production (an earlier number rolls back to it); the next call by name
    gets it. A gated prompt's version that was never production answers 202 with a gate
    check instead: production moves once the version passes it."""
    moved = await prompts.make_production(name, change.version, actor)
    if isinstance(moved, GateCheckPublic):
        return JSONResponse(moved.model_dump(mode="json"), status_code=202)
    return moved


@router.post("/{name}/rollback", response_model=PromptPublic)
async def roll_back(name: str, actor: CurrentActor, prompts: PromptLibraryDep) -> PromptPublic:
    """Make the version that was production before the current one production again."""
    return await prompts.rollback(name, actor)


@router.get("/{name}/diff", response_model=PromptDiff)
async def diff_versions(
    name: str,
    _: CurrentActor,
    prompts: PromptLibraryDep,
    old: Annotated[int, Query(alias="from", ge=1)],
    new: Annotated[int, Query(alias="to", ge=1)],
) -> PromptDiff:
    """A line diff (unified, as difflib writes it) of two versions written out as text."""
    return await prompts.diff(name, old, new)


playground_router = APIRouter(prefix="/api/playground", tags=["prompts"])


@playground_router.post("")
async def run_in_playground(
    run: PlaygroundRun, actor: CurrentActor, hub_state: HubStateDep, prompts: PromptLibraryDep
) -> Response:
    """Run a prompt (a version, or an edit not saved yet) with its variables on one model,
    streamed as chat-completion chunks that end with the usage. Builders run it; the calls
    count under the service `prompt-playground` and the team of who ran them."""
    actor.require(Permission.build)
    await prompts.check(run)
    call = PromptCall(
        variables=variable_values(run.variables),
        version=None,
        stream=True,
        client_wants_usage=True,
    )
    chat = render_request(run, call, name="playground", where="this prompt")
    service = ServiceIdentity(
        id=hub_state.playground_service_id,
        name=PLAYGROUND_SERVICE_NAME,
        team=actor.team,
        is_admin=False,
    )
    if run.mcp_servers:
        tools = PromptTools(hub_state.gateway, hub_state.registry, hub_state.engine)
        return await tools.complete(
            service=service, request=chat, definition=run, caller=actor.name
        )
    return await hub_state.gateway.complete(service=service, request=chat)
