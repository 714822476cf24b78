"""The agent catalog API: build a draft, publish versions, choose the live one, and read what
the runtime needs to run it.

Anyone but an agent's owner and admins sees only what is published: in `GET /{slug}` the
`name`, `description` and `draft` are then the live version's. An agent a person may not read
answers 404, as if it did not exist.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from agents.spec import AgentSpec
from hub.agent_catalog import AgentCatalog
from hub.api.deps import CurrentActor, HubStateDep, RowId
from hub.api.paging import PageDep
from hub.models.agent import (
    AgentCreate,
    AgentListItem,
    AgentPublic,
    AgentUpdate,
    AgentVersionPublic,
)
from hub.models.eval_gate import GateCheckPublic

__all__ = ["AgentCatalogDep", "router"]


async def get_agent_catalog(hub_state: HubStateDep) -> AgentCatalog:
    return AgentCatalog(engine=hub_state.engine, models=hub_state.gateway.catalog)


AgentCatalogDep = Annotated[AgentCatalog, Depends(get_agent_catalog)]

router = APIRouter(prefix="/api/agents", tags=["agents"])


@router.post("", response_model=AgentPublic, status_code=201)
async def create_agent(
    agent_in: AgentCreate, actor: CurrentActor, agents: AgentCatalogDep
) -> AgentPublic:
    """Create an agent as a draft of its owner (the caller); nobody else sees it until it is
    published."""
    return await agents.create(agent_in, actor)


@router.get("", response_model=list[AgentListItem])
async def list_agents(
    actor: CurrentActor,
    agents: AgentCatalogDep,
    page: PageDep,
    q: str | None = None,
    mine: bool = False,
) -> list[AgentListItem]:
    """Published agents the caller may use, searched by `q` in slug, name and description;
    with `mine=true`, the caller's own agents, unpublished drafts included. Paged."""
    return page.of(await agents.find(actor, text=q, mine=mine))


@router.get("/{slug}", response_model=AgentPublic)
async def get_agent(slug: str, actor: CurrentActor, agents: AgentCatalogDep) -> AgentPublic:
    return await agents.get(slug, actor)


@router.patch("/{slug}", response_model=AgentPublic)
async def update_agent(
    slug: str, update: AgentUpdate, actor: CurrentActor, agents: AgentCatalogDep
) -> AgentPublic:
    """Change the draft; the live version stays as it was until the next publish."""
    return await agents.update(slug, update, actor)


@router.delete("/{slug}", status_code=204)
async def delete_agent(slug: str, actor: CurrentActor, agents: AgentCatalogDep) -> Response:
    await agents.delete(slug, actor)
    return Response(status_code=204)


@router.post(
    "/{slug}/publish",
    response_model=AgentVersionPublic,
    status_code=201,
    responses={202: {"model": GateCheckPublic, "description": "a gate check was started"}},
)
async def publish_agent(
    slug: str, actor: CurrentActor, agents: AgentCatalogDep
) -> AgentVersionPublic | Response:
    """Freeze the draft as the next version (v1, v2, ...) and make it live. An agent bound to
    a regression gate answers 202 with a gate check instead: the version goes live once it
    passes (hub/api/routes/eval_gates.py)."""
    published = await agents.publish(slug, actor)
    if isinstance(published, GateCheckPublic):
        return JSONResponse(published.model_dump(mode="json"), status_code=202)
    return published


@router.get("/{slug}/versions", response_model=list[AgentVersionPublic])
async def list_versions(
    slug: str, actor: CurrentActor, agents: AgentCatalogDep, page: PageDep
) -> list[AgentVersionPublic]:
    """Published versions, newest first, with who published each. Paged."""
    return page.of(await agents.versions(slug, actor))


@router.post("/{slug}/versions/{number}/restore", response_model=AgentVersionPublic)
async def restore_version(
    slug: str, number: RowId, actor: CurrentActor, agents: AgentCatalogDep
) -> AgentVersionPublic:
    """Make an earlier version live again (nothing is copied; the draft is left as it is).
    Not gated; 409 for a version a gated agent's gate held back, which never went live."""
    return await agents.restore(slug, number, actor)


@router.get("/{slug}/live", response_model=AgentSpec)
async def live_run_spec(slug: str, actor: CurrentActor, agents: AgentCatalogDep) -> AgentSpec:
    """What the runtime needs to run the live version: instructions, model and its prices,
    limits, and the tools of its active servers as its allow-list filters them."""
    return await agents.live_spec(slug, actor)


@router.get("/{slug}/draft-run-spec", response_model=AgentSpec)
async def draft_run_spec(slug: str, actor: CurrentActor, agents: AgentCatalogDep) -> AgentSpec:
    """The same for the draft, so its owner can try it before publishing."""
    return await agents.draft_spec(slug, actor)
