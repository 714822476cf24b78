"""The experiment pages for people: the experiments, one experiment's two analyses side by
side with its Stop button, and the form that starts one.

They use the same `Experiments` calls as the API, so the same people may do the same things:
anyone signed in reads experiments; the prompt's team's builders and admins start and stop
them.
"""

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from hub.api.deps import OptionalActor, RowId
from hub.api.routes.experiments import ExperimentsDep
from hub.core.errors import Refusal
from hub.models.experiment import ExperimentCreate
from hub.web.pages import page, refusal_of, to_login

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_FORM_FIELDS = ("prompt", "version_a", "version_b", "split", "budget", "differ", "judge_model")


@router.get("/experiments")
async def experiments_page(
    request: Request, actor: OptionalActor, experiments: ExperimentsDep, prompt: str = ""
) -> Response:
    if actor is None:
        return to_login(request)
    found = await experiments.find(prompt[:63] or None)
    return page(
        request, "experiments.html", actor=actor, experiments=found, prompt=prompt, error=None
    )


@router.get("/experiments/new")
async def new_experiment_form(
    request: Request, actor: OptionalActor, experiments: ExperimentsDep, prompt: str = ""
) -> Response:
    if actor is None:
        return to_login(request)
    form = {
        "prompt": prompt[:63],
        "version_a": "",
        "version_b": "",
        "split": "0.5",
        "budget": "1000",
    }
    return page(request, "experiment_new.html", actor=actor, form=form, error=None)


@router.post("/experiments/new")
async def experiment_from_form(
    request: Request, actor: OptionalActor, experiments: ExperimentsDep
) -> Response:
    if actor is None:
        return to_login(request)
    posted = await request.form()
    form = {key: str(posted.get(key, "")).strip() for key in _FORM_FIELDS}
    try:
        chosen = {"differ": form["differ"] or "exact", "judge_model": form["judge_model"] or None}
        body = ExperimentCreate.model_validate({**form, **chosen})
        started = await experiments.create(body, actor)
    except (ValidationError, Refusal) as error:
        status, message = refusal_of(error)
        models = [entry.name for entry in experiments.models.models]
        return page(
            request,
            "experiment_new.html",
            status=status,
            actor=actor,
            form=form,
            models=models,
            error=message,
        )
    return RedirectResponse(f"/experiments/{started.id}", status_code=303)


@router.get("/experiments/{experiment_id}")
async def experiment_page(
    request: Request, experiment_id: RowId, actor: OptionalActor, experiments: ExperimentsDep
) -> Response:
    if actor is None:
        return to_login(request)
    try:
        experiment = await experiments.get(experiment_id)
    except Refusal as refusal:
        status, message = refusal_of(refusal)
        return page(
            request,
            "experiments.html",
            status=status,
            actor=actor,
            experiments=[],
            prompt="",
            error=message,
        )
    return page(
        request,
        "experiment.html",
        actor=actor,
        experiment=experiment,
        may_stop=actor.can_manage(experiment.team),
    )


@router.post("/experiments/{experiment_id}/stop")
async def stop_from_form(
    request: Request, experiment_id: RowId, actor: OptionalActor, experiments: ExperimentsDep
) -> Response:
    if actor is None:
        return to_login(request)
    await experiments.stop(experiment_id, actor)
    return RedirectResponse(f"/experiments/{experiment_id}", status_code=303)
