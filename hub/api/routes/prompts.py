"""The prompt library API: make a prompt (with v1), add versions, choose production, roll
back, and compare two versions. A service calls a prompt by name at
`POST /v1/prompts/{name}/completions` (hub/gateway/routes.py)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from hub.api.deps import CurrentActor, HubStateDep
from hub.models.prompt import (
    ProductionChange,
    PromptCreate,
    PromptDefinition,
    PromptDiff,
    PromptListItem,
    PromptPublic,
    PromptVersionPublic,
)
from hub.prompt_library import PromptLibrary

__all__ = ["PromptLibraryDep", "router"]


async def get_prompt_library(hub_state: HubStateDep) -> PromptLibrary:
    return PromptLibrary(
        engine=hub_state.engine, models=hub_state.gateway.catalog, resolver=hub_state.prompts
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
    q: Annotated[str | None, Query(max_length=200)] = None,
    team: Annotated[str | None, Query(max_length=100)] = None,
) -> list[PromptListItem]:
    """Every prompt with its team and production version, searched by `q` in name and
    description."""
    return await prompts.find(q, team)


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
    name: str, _: CurrentActor, prompts: PromptLibraryDep
) -> list[PromptVersionPublic]:
    """Every version, newest first."""
    return await prompts.versions(name)


@router.get("/{name}/versions/{number}", response_model=PromptVersionPublic)
async def get_version(
    name: str, number: int, _: CurrentActor, prompts: PromptLibraryDep
) -> PromptVersionPublic:
    return await prompts.version(name, number)


@router.post("/{name}/production", response_model=PromptPublic)
async def make_production(
    name: str, change: ProductionChange, actor: CurrentActor, prompts: PromptLibraryDep
) -> PromptPublic:
    """Make a version production (an earlier number rolls back to it); the next call by name
    gets it."""
    return await prompts.make_production(name, change.version, actor)


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
