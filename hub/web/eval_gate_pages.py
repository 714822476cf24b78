"""The regression gate's pages for people: the gate form on a prompt's or an agent's page (bind,
change, remove), and a gate check's page with its two runs' progress, both scores, the verdict,
the rows that got worse side by side, and the admins' override form. The same pages under
`/prompts/{name}` and `/agents/{slug}`; a refused gate form is shown again on the prompt's or
agent's page with what was typed.

They use the same `EvalGates` calls as the API, so the same people may do the same things:
anyone who may read the prompt or agent reads; those who may run it bind its gate; only admins
override a refused (or failed) check.
"""

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from hub.api.deps import HubStateDep, OptionalActor, RowId
from hub.api.routes.agents import AgentCatalogDep
from hub.api.routes.eval_gates import EvalGatesDep
from hub.api.routes.eval_runs import EvalRunsDep
from hub.api.routes.prompts import PromptLibraryDep
from hub.core.errors import Refusal
from hub.evaluation.gates import EvalGates
from hub.evaluation.runs import EvalRuns
from hub.models.actor import Actor
from hub.models.eval_gate import GateOverride, GateStatus
from hub.models.evaluation import RunComparison, TargetKind
from hub.web.agent_pages import show_agent
from hub.web.gate_form import gate_body, posted_gate_form
from hub.web.pages import page, refusal_of, to_login
from hub.web.prompt_pages import show_prompt

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# The target's page again, with a refusal above it (status, message) and what was typed in
# the gate form, if anything.
ShowTarget = Callable[[int, str, dict[str, str] | None], Awaitable[Response]]


def _base(kind: TargetKind, name: str) -> str:
    """The target's page."""
    return f"/{kind}s/{quote(name, safe='')}"


async def _bind(
    request: Request,
    kind: TargetKind,
    name: str,
    actor: Actor,
    gates: EvalGates,
    show: ShowTarget,
) -> Response:
    form = posted_gate_form(await request.form())
    try:
        await gates.bind(kind, name, gate_body(form), actor)
    except (ValidationError, Refusal) as error:
        status, message = refusal_of(error)
        return await show(status, f"The gate was not changed. {message}", form)
    return RedirectResponse(f"{_base(kind, name)}#gate", status_code=303)


async def _remove(
    kind: TargetKind, name: str, actor: Actor, gates: EvalGates, show: ShowTarget
) -> Response:
    try:
        await gates.remove(kind, name, actor)
    except Refusal as error:
        status, message = refusal_of(error)
        return await show(status, message, None)
    return RedirectResponse(f"{_base(kind, name)}#gate", status_code=303)


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

    async def show(status: int, error: str, typed: dict[str, str] | None) -> Response:
        return await show_prompt(
            request,
            actor,
            prompts,
            gates,
            hub_state,
            name,
            status=status,
            error=error,
            typed_gate=typed,
        )

    return await _bind(request, "prompt", name, actor, gates, show)


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

    async def show(status: int, error: str, typed: dict[str, str] | None) -> Response:
        return await show_prompt(
            request, actor, prompts, gates, hub_state, name, status=status, error=error
        )

    return await _remove("prompt", name, actor, gates, show)


@router.post("/agents/{slug}/gate")
async def bind_agent_gate_from_form(
    request: Request,
    slug: str,
    actor: OptionalActor,
    agents: AgentCatalogDep,
    gates: EvalGatesDep,
    hub_state: HubStateDep,
) -> Response:
    if actor is None:
        return to_login(request)

    async def show(status: int, error: str, typed: dict[str, str] | None) -> Response:
        return await show_agent(
            request, actor, agents, hub_state, slug, status, error, typed_gate=typed
        )

    return await _bind(request, "agent", slug, actor, gates, show)


@router.post("/agents/{slug}/gate/remove")
async def remove_agent_gate_from_form(
    request: Request,
    slug: str,
    actor: OptionalActor,
    agents: AgentCatalogDep,
    gates: EvalGatesDep,
    hub_state: HubStateDep,
) -> Response:
    if actor is None:
        return to_login(request)

    async def show(status: int, error: str, typed: dict[str, str] | None) -> Response:
        return await show_agent(request, actor, agents, hub_state, slug, status, error)

    return await _remove("agent", slug, actor, gates, show)


async def _check_page(
    request: Request,
    actor: Actor,
    gates: EvalGates,
    runs: EvalRuns,
    kind: TargetKind,
    name: str,
    check_id: RowId,
    *,
    status: int = 200,
    error: str | None = None,
    reason: str = "",
) -> Response:
    shown = {"kind": kind, "target_name": name, "base": _base(kind, name)}
    try:
        check = await gates.check(kind, name, check_id, actor)
    except Refusal as refusal:
        code, message = refusal_of(refusal)
        return page(
            request,
            "eval_gate_check.html",
            status=code,
            actor=actor,
            check=None,
            comparison=None,
            may_override=False,
            error=message,
            reason="",
            **shown,
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
        comparison=comparison,
        may_override=actor.is_admin and check.status in (GateStatus.refused, GateStatus.failed),
        error=error,
        reason=reason,
        **shown,
    )


async def _override(
    request: Request,
    actor: Actor,
    gates: EvalGates,
    runs: EvalRuns,
    kind: TargetKind,
    name: str,
    check_id: RowId,
) -> Response:
    reason = str((await request.form()).get("reason", ""))
    try:
        await gates.override(kind, name, check_id, GateOverride(reason=reason).reason, actor)
    except (ValidationError, Refusal) as error:
        status, message = refusal_of(error)
        return await _check_page(
            request,
            actor,
            gates,
            runs,
            kind,
            name,
            check_id,
            status=status,
            error=message,
            reason=reason[:2000],
        )
    return RedirectResponse(f"{_base(kind, name)}/gate-checks/{check_id}", status_code=303)


@router.get("/prompts/{name}/gate-checks/{check_id}")
async def gate_check_page(
    request: Request,
    name: str,
    check_id: RowId,
    actor: OptionalActor,
    gates: EvalGatesDep,
    runs: EvalRunsDep,
) -> Response:
    if actor is None:
        return to_login(request)
    return await _check_page(request, actor, gates, runs, "prompt", name, check_id)


@router.post("/prompts/{name}/gate-checks/{check_id}/override")
async def override_from_form(
    request: Request,
    name: str,
    check_id: RowId,
    actor: OptionalActor,
    gates: EvalGatesDep,
    runs: EvalRunsDep,
) -> Response:
    if actor is None:
        return to_login(request)
    return await _override(request, actor, gates, runs, "prompt", name, check_id)


@router.get("/agents/{slug}/gate-checks/{check_id}")
async def agent_gate_check_page(
    request: Request,
    slug: str,
    check_id: RowId,
    actor: OptionalActor,
    gates: EvalGatesDep,
    runs: EvalRunsDep,
) -> Response:
    if actor is None:
        return to_login(request)
    return await _check_page(request, actor, gates, runs, "agent", slug, check_id)


@router.post("/agents/{slug}/gate-checks/{check_id}/override")
async def agent_override_from_form(
    request: Request,
    slug: str,
    check_id: RowId,
    actor: OptionalActor,
    gates: EvalGatesDep,
    runs: EvalRunsDep,
) -> Response:
    if actor is None:
        return to_login(request)
    return await _override(request, actor, gates, runs, "agent", slug, check_id)
