"""The pages of judges calibrated by people: a run's labelling page (people mark rows pass or
fail with a note) and a judge prompt's page (its calibrations with accuracy, kappa, the
confusion matrix and the disagreements, a form to calibrate a version on a run, and the
threshold). They use the same `EvalJudges` calls as the API, so the same people may do the
same things."""

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from hub.api.deps import OptionalActor, RowId
from hub.api.routes.eval_judges import EvalJudgesDep
from hub.api.routes.eval_runs import EvalRunsDep
from hub.core.errors import Refusal
from hub.core.roles import Permission
from hub.evaluation.judges import EvalJudges
from hub.evaluation.runs import EvalRuns
from hub.models.actor import Actor
from hub.models.eval_judge import CalibrationCreate, LabelSet, ThresholdSet
from hub.models.evaluation import ResultStatus
from hub.web.pages import page, refusal_of, to_login

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# The rows a labelling page shows: the first unlabelled ones, then labelled ones.
SAMPLE = 50
# Enough for any test set (10,000 cases a file).
_ALL = 10_000


def _may_manage(actor: Actor, team: str) -> bool:
    return actor.may(Permission.build) and actor.can_manage(team)


async def _label_page(
    request: Request,
    actor: Actor,
    run_id: RowId,
    runs: EvalRuns,
    judges: EvalJudges,
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    try:
        run = await runs.get(run_id)
        results = await runs.results(run_id, offset=0, limit=_ALL, only_failed=False)
        labels = {label.case_id: label for label in await judges.labels(run_id)}
    except Refusal as refusal:
        status, message = refusal_of(refusal)
        return page(request, "eval_label.html", status=status, actor=actor, run=None, error=message)
    answered = [r for r in results.results if r.status == ResultStatus.done]
    rows = [r for r in answered if r.case_id not in labels]
    rows = (rows + [r for r in answered if r.case_id in labels])[:SAMPLE]
    return page(
        request,
        "eval_label.html",
        status=status,
        actor=actor,
        run=run,
        rows=rows,
        labels=labels,
        answered=len(answered),
        may_label=_may_manage(actor, run.team),
        error=error,
    )


@router.get("/evaluation/runs/{run_id}/label")
async def label_page(
    request: Request, run_id: RowId, actor: OptionalActor, runs: EvalRunsDep, judges: EvalJudgesDep
) -> Response:
    if actor is None:
        return to_login(request)
    return await _label_page(request, actor, run_id, runs, judges)


@router.post("/evaluation/runs/{run_id}/label")
async def label_from_form(
    request: Request, run_id: RowId, actor: OptionalActor, runs: EvalRunsDep, judges: EvalJudgesDep
) -> Response:
    """One row's Pass or Fail with its note."""
    if actor is None:
        return to_login(request)
    posted = await request.form()
    case = str(posted.get("case_id", ""))
    try:
        body = LabelSet(passed=posted.get("verdict") == "pass", note=str(posted.get("note", "")))
        await judges.set_label(run_id, int(case) if case.isdigit() else 0, body, actor)
    except (ValidationError, Refusal) as error:
        status, message = refusal_of(error)
        return await _label_page(request, actor, run_id, runs, judges, status=status, error=message)
    return RedirectResponse(f"/evaluation/runs/{run_id}/label#case-{case}", status_code=303)


async def _judge_page(
    request: Request,
    actor: Actor,
    name: str,
    judges: EvalJudges,
    *,
    status: int = 200,
    error: str | None = None,
    run: str = "",
) -> Response:
    try:
        judge = await judges.judge(name)
    except Refusal as refusal:
        status, message = refusal_of(refusal)
        return page(
            request, "eval_judge.html", status=status, actor=actor, judge=None, error=message
        )
    return page(
        request,
        "eval_judge.html",
        status=status,
        actor=actor,
        judge=judge,
        may_manage=_may_manage(actor, judge.team),
        run=run,
        error=error,
    )


@router.get("/evaluation/judges/{name}")
async def judge_page(
    request: Request, name: str, actor: OptionalActor, judges: EvalJudgesDep, run: str = ""
) -> Response:
    if actor is None:
        return to_login(request)
    return await _judge_page(request, actor, name[:63], judges, run=run[:20])


@router.post("/evaluation/judges/{name}/calibrations")
async def calibrate_from_form(
    request: Request, name: str, actor: OptionalActor, judges: EvalJudgesDep
) -> Response:
    if actor is None:
        return to_login(request)
    posted = await request.form()
    run = str(posted.get("run", "")).strip()
    version = str(posted.get("version", "")).strip()
    try:
        body = CalibrationCreate.model_validate(
            {
                "run": run,
                "version": version or None,
                "pass_score": str(posted.get("pass_score", "")).strip() or 0.5,
            }
        )
        await judges.calibrate(name, body, actor)
    except (ValidationError, Refusal) as error:
        status, message = refusal_of(error)
        return await _judge_page(
            request, actor, name, judges, status=status, error=message, run=run
        )
    return RedirectResponse(f"/evaluation/judges/{name}", status_code=303)


@router.post("/evaluation/judges/{name}/threshold")
async def threshold_from_form(
    request: Request, name: str, actor: OptionalActor, judges: EvalJudgesDep
) -> Response:
    if actor is None:
        return to_login(request)
    posted = await request.form()
    try:
        body = ThresholdSet.model_validate({"kappa": str(posted.get("kappa", "")).strip()})
        await judges.set_threshold(name, body.kappa, actor)
    except (ValidationError, Refusal) as error:
        status, message = refusal_of(error)
        return await _judge_page(request, actor, name, judges, status=status, error=message)
    return RedirectResponse(f"/evaluation/judges/{name}", status_code=303)
