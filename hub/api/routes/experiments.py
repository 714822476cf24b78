"""Experiments: two versions of a prompt on live traffic, their units' outcomes, and both
analyses (every unit, and the exposed units only)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from hub.api.deps import CurrentActor, HubStateDep, RowId
from hub.api.paging import PageDep
from hub.evaluation.experiments import Experiments
from hub.models.experiment import (
    CallPage,
    ExperimentCreate,
    ExperimentPublic,
    OutcomeIn,
    OutcomePublic,
)

__all__ = ["ExperimentsDep", "router"]


async def get_experiments(hub_state: HubStateDep) -> Experiments:
    return Experiments(
        engine=hub_state.engine,
        resolver=hub_state.experiments,
        models=hub_state.gateway.catalog,
    )


ExperimentsDep = Annotated[Experiments, Depends(get_experiments)]

router = APIRouter(prefix="/api/experiments", tags=["experiments"])


@router.post("", response_model=ExperimentPublic, status_code=201)
async def start_experiment(
    body: ExperimentCreate, actor: CurrentActor, experiments: ExperimentsDep
) -> ExperimentPublic:
    """Split the prompt's calls that send a `unit` between `version_a` and `version_b`; the
    prompt's team's builders and services, and admins. One running experiment per prompt."""
    return await experiments.create(body, actor)


@router.get("", response_model=list[ExperimentPublic])
async def list_experiments(
    _: CurrentActor,
    experiments: ExperimentsDep,
    page: PageDep,
    prompt: Annotated[str | None, Query(max_length=63)] = None,
) -> list[ExperimentPublic]:
    """The newest experiments first, with their counts (the analyses are in each one's own
    answer). Paged."""
    return page.answer(await experiments.find(prompt, offset=page.offset, limit=page.fetch))


@router.get("/{experiment_id}", response_model=ExperimentPublic)
async def get_experiment(
    experiment_id: RowId, _: CurrentActor, experiments: ExperimentsDep
) -> ExperimentPublic:
    """The experiment, its counts, the diluted and the post-exposure analyses."""
    return await experiments.get(experiment_id)


@router.get("/{experiment_id}/calls", response_model=CallPage)
async def experiment_calls(
    experiment_id: RowId,
    _: CurrentActor,
    experiments: ExperimentsDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CallPage:
    """The calls in the order they were made: unit, arm served, both answers' starts, and
    whether they differ."""
    return await experiments.calls(experiment_id, offset=offset, limit=limit)


@router.post("/{experiment_id}/outcomes", response_model=OutcomePublic)
async def report_outcome(
    experiment_id: RowId, body: OutcomeIn, actor: CurrentActor, experiments: ExperimentsDep
) -> OutcomePublic:
    """A unit's outcome (a later report replaces it); the prompt's team's services and
    builders, and admins."""
    return await experiments.report(experiment_id, body, actor)


@router.post("/{experiment_id}/stop", response_model=ExperimentPublic)
async def stop_experiment(
    experiment_id: RowId, actor: CurrentActor, experiments: ExperimentsDep
) -> ExperimentPublic:
    """Serve production again to every call; the figures stay."""
    return await experiments.stop(experiment_id, actor)
