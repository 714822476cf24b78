"""Judges calibrated by people: labels on a run's rows, and a judge prompt's calibrations
against them with the threshold above which it counts as calibrated."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from hub.api.deps import CurrentActor, HubStateDep, RowId
from hub.api.paging import PageDep
from hub.evaluation.judges import EvalJudges
from hub.models.eval_judge import (
    CalibrationCreate,
    CalibrationPublic,
    JudgePublic,
    LabelPublic,
    LabelSet,
    ThresholdSet,
)

__all__ = ["EvalJudgesDep", "router"]


async def get_eval_judges(hub_state: HubStateDep) -> EvalJudges:
    return EvalJudges(
        engine=hub_state.engine,
        gateway=hub_state.gateway,
        service_id=hub_state.evaluation_service_id,
    )


EvalJudgesDep = Annotated[EvalJudges, Depends(get_eval_judges)]

router = APIRouter(prefix="/api/evaluation", tags=["evaluation"])


@router.get("/runs/{run_id}/labels", response_model=list[LabelPublic])
async def list_labels(
    run_id: RowId, _: CurrentActor, judges: EvalJudgesDep, page: PageDep
) -> list[LabelPublic]:
    """People's labels on the run's rows, in the cases' order. Paged."""
    return page.of(await judges.labels(run_id))


@router.put("/runs/{run_id}/labels/{case_id}", response_model=LabelPublic)
async def set_label(
    run_id: RowId, case_id: RowId, body: LabelSet, actor: CurrentActor, judges: EvalJudgesDep
) -> LabelPublic:
    """Mark the row pass or fail with a note (the latest label wins); the run's team's
    builders and admins."""
    return await judges.set_label(run_id, case_id, body, actor)


@router.delete("/runs/{run_id}/labels/{case_id}", status_code=204)
async def delete_label(
    run_id: RowId, case_id: RowId, actor: CurrentActor, judges: EvalJudgesDep
) -> Response:
    """Take the row's label back."""
    await judges.delete_label(run_id, case_id, actor)
    return Response(status_code=204)


@router.post("/judges/{prompt}/calibrations", response_model=CalibrationPublic, status_code=201)
async def calibrate(
    prompt: str, body: CalibrationCreate, actor: CurrentActor, judges: EvalJudgesDep
) -> CalibrationPublic:
    """Judge every labelled row of the run with a version of the judge prompt (production when
    `version` is left out) and keep how far it agrees with people; answered when done."""
    return await judges.calibrate(prompt, body, actor)


@router.get("/judges/{prompt}", response_model=JudgePublic)
async def get_judge(prompt: str, _: CurrentActor, judges: EvalJudgesDep) -> JudgePublic:
    """The judge's calibrations, newest first, its threshold and whether it is calibrated."""
    return await judges.judge(prompt)


@router.put("/judges/{prompt}/threshold", response_model=JudgePublic)
async def set_threshold(
    prompt: str, body: ThresholdSet, actor: CurrentActor, judges: EvalJudgesDep
) -> JudgePublic:
    """The kappa (0 to 1) at or above which the judge counts as calibrated."""
    return await judges.set_threshold(prompt, body.kappa, actor)
