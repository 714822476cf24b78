"""Evaluation runs: estimate, start, follow, read the results of, cancel and compare runs of a
prompt version or an agent version over a test-set version. Test sets themselves are under
/api/evaluation/sets."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from hub.api.deps import CurrentActor, HubStateDep, RowId
from hub.api.paging import PageDep
from hub.evaluation.runs import EvalRuns
from hub.models.evaluation import (
    ResultPage,
    RunComparison,
    RunCreate,
    RunEstimate,
    RunPublic,
)

__all__ = ["EvalRunsDep", "router"]


async def get_eval_runs(hub_state: HubStateDep) -> EvalRuns:
    return EvalRuns(engine=hub_state.engine, models=hub_state.gateway.catalog)


EvalRunsDep = Annotated[EvalRuns, Depends(get_eval_runs)]

router = APIRouter(prefix="/api/evaluation/runs", tags=["evaluation"])


@router.post("/estimate", response_model=RunEstimate)
async def estimate_run(body: RunCreate, actor: CurrentActor, runs: EvalRunsDep) -> RunEstimate:
    """What the run would cost at the catalog's prices, and how many calls it makes."""
    return await runs.estimate(body, actor)


@router.post("", response_model=RunPublic, status_code=201)
async def create_run(body: RunCreate, actor: CurrentActor, runs: EvalRunsDep) -> RunPublic:
    """Queue a run of a prompt version (production when `version` is left out), or of an agent
    version (its live one), over a test-set version (the latest when `set_version` is left
    out); the prompt's team's builders, or the agent's owner, and admins."""
    return await runs.create(body, actor)


@router.get("", response_model=list[RunPublic])
async def list_runs(
    _: CurrentActor,
    runs: EvalRunsDep,
    page: PageDep,
    test_set: Annotated[str | None, Query(alias="set", max_length=63)] = None,
    prompt: Annotated[str | None, Query(max_length=63)] = None,
) -> list[RunPublic]:
    """The newest runs first, with their progress. Paged."""
    return page.answer(await runs.find(test_set, prompt, offset=page.offset, limit=page.fetch))


@router.get("/{run_id}", response_model=RunPublic)
async def get_run(run_id: RowId, _: CurrentActor, runs: EvalRunsDep) -> RunPublic:
    """The run, its progress and the figures of its results so far."""
    return await runs.get(run_id)


@router.get("/{run_id}/results", response_model=ResultPage)
async def run_results(
    run_id: RowId,
    _: CurrentActor,
    runs: EvalRunsDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    only: Annotated[str | None, Query(pattern="^failed$")] = None,
) -> ResultPage:
    """The results in the cases' order; `only=failed` for those that did not pass."""
    return await runs.results(run_id, offset=offset, limit=limit, only_failed=only == "failed")


@router.post("/{run_id}/cancel", response_model=RunPublic)
async def cancel_run(run_id: RowId, actor: CurrentActor, runs: EvalRunsDep) -> RunPublic:
    """Send no more cases; those being answered finish."""
    return await runs.cancel(run_id, actor)


@router.get("/{before}/compare/{after}", response_model=RunComparison)
async def compare_runs(
    before: RowId, after: RowId, _: CurrentActor, runs: EvalRunsDep
) -> RunComparison:
    """The cases that passed in `after` and not in `before`, and the other way round."""
    return await runs.compare(before, after)
