"""The regression gate's pages for people: the gate form on a prompt's page (bind, change,
remove), and a gate check's page with its two runs' progress, both scores, the verdict, the
rows that got worse side by side, and the admins' override form.

They use the same `EvalGates` calls as the API, so the same people may do the same things:
anyone signed in reads; the prompt's team's builders and admins bind its gate; only admins
override a refused (or failed) check.
"""

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from hub.api.deps import HubStateDep, OptionalActor
from hub.api.routes.eval_gates import EvalGatesDep
from hub.api.routes.eval_runs import EvalRunsDep
from hub.api.routes.prompts import PromptLibraryDep
from hub.core.errors import Refusal
from hub.evaluation.gates import EvalGates
from hub.evaluation.runs import EvalRuns
from hub.models.actor import Actor
from hub.models.eval_gate import GateOverride, GateStatus
from hub.models.evaluation import RunComparison
from hub.web.gate_form import gate_body, posted_gate_form
from hub.web.pages import page, refusal_of, to_login
from hub.web.prompt_pages import show_prompt

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.post("/prompts/{name}/gate")
async def bind_from_form(
    request: Request,
    name: str,
    actor: OptionalActor,
    prompts: PromptLibraryDep,
    gates: EvalGatesDep,
    hub_state: HubStateDep,
) -> Response:
    if actor is None:
        return to_login(request)
    form = posted_gate_form(await request.form())
    try:
        await gates.bind(name, gate_body(form), actor)
    except (ValidationError, Refusal) as error:
        status, message = refusal_of(error)
        return await show_prompt(
            request,
            actor,
            prompts,
            gates,
            hub_state,
            name,
            status=status,
            error=f"The gate was not changed. {message}",
            typed_gate=form,
        )
    return RedirectResponse(f"/prompts/{name}#gate", status_code=303)


@router.post("/prompts/{name}/gate/remove")
async def remove_from_form(
    request: Request,
    name: str,
    actor: OptionalActor,
    prompts: PromptLibraryDep,
    gates: EvalGatesDep,
    hub_state: HubStateDep,
) -> Response:
    if actor is None:
        return to_login(request)
    try:
        await gates.remove(name, actor)
    except Refusal as error:
        status, message = refusal_of(error)
        return await show_prompt(
            request, actor, prompts, gates, hub_state, name, status=status, error=message
        )
    return RedirectResponse(f"/prompts/{name}#gate", status_code=303)


async def _check_page(
    request: Request,
    actor: Actor,
    gates: EvalGates,
    runs: EvalRuns,
    name: str,
    check_id: int,
    *,
    status: int = 200,
    error: str | None = None,
    reason: str = "",
) -> Response:
    try:
        check = await gates.check(name, check_id)
    except Refusal as refusal:
        code, message = refusal_of(refusal)
        return page(
            request,
            "eval_gate_check.html",
            status=code,
            actor=actor,
            check=None,
            prompt_name=name,
            comparison=None,
            may_override=False,
            error=message,
            reason="",
        )
    comparison: RunComparison | None = None
    if check.status != GateStatus.running:
        try:
            comparison = await runs.compare(check.baseline_run, check.candidate_run)
        except Refusal:
            comparison = None  # a run is gone; the check keeps its figures
    return page(
        request,
        "eval_gate_check.html",
        status=status,
        actor=actor,
        check=check,
        prompt_name=name,
        comparison=comparison,
        may_override=actor.is_admin and check.status in (GateStatus.refused, GateStatus.failed),
        error=error,
        reason=reason,
    )


@router.get("/prompts/{name}/gate-checks/{check_id}")
async def gate_check_page(
    request: Request,
    name: str,
    check_id: int,
    actor: OptionalActor,
    gates: EvalGatesDep,
    runs: EvalRunsDep,
) -> Response:
    if actor is None:
        return to_login(request)
    return await _check_page(request, actor, gates, runs, name, check_id)


@router.post("/prompts/{name}/gate-checks/{check_id}/override")
async def override_from_form(
    request: Request,
    name: str,
    check_id: int,
    actor: OptionalActor,
    gates: EvalGatesDep,
    runs: EvalRunsDep,
) -> Response:
    if actor is None:
        return to_login(request)
    reason = str((await request.form()).get("reason", ""))
    try:
        await gates.override(name, check_id, GateOverride(reason=reason).reason, actor)
    except (ValidationError, Refusal) as error:
        status, message = refusal_of(error)
        return await _check_page(
            request,
            actor,
            gates,
            runs,
            name,
            check_id,
            status=status,
            error=message,
            reason=reason[:2000],
        )
    return RedirectResponse(f"/prompts/{name}/gate-checks/{check_id}", status_code=303)
