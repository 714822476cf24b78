"""The evaluation run pages for people: the runs, the run form (its estimate shown before
"Start"), a run's page with a progress bar that follows it, and two runs compared.

They use the same `EvalRuns` calls as the API, so the same people may do the same things:
anyone signed in reads runs; the prompt's team's builders and admins (for an agent, its owner
and admins) start and cancel them.
"""

from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from hub.api.deps import OptionalActor, RowId
from hub.api.routes.eval_runs import EvalRunsDep
from hub.core.errors import InvalidError, Refusal
from hub.evaluation.agent_answers import case_conversation
from hub.evaluation.runs import EvalRuns
from hub.models.actor import Actor
from hub.models.evaluation import CheckKind, RunCreate, RunEstimate
from hub.web.pages import page, refusal_of, to_login

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

RESULTS_PER_PAGE = 50
# The deterministic checks the form offers, with the field each one's value goes in.
_FORM_CHECKS: list[tuple[CheckKind, str, str]] = [
    (CheckKind.valid_json, "", "the answer parses as JSON"),
    (CheckKind.json_schema, "json_schema", "matches this JSON schema"),
    (CheckKind.required_fields, "fields", "is an object with these fields (comma-separated)"),
    (CheckKind.tool_call, "tool", "called this tool (server.tool, or the tool's name)"),
    (CheckKind.exact, "value", "equals this text (empty: the case's expected output)"),
    (CheckKind.contains, "value", "contains this text (empty: the case's expected output)"),
    (CheckKind.regex, "value", "matches this regular expression"),
]


def _check_of(kind: CheckKind, field: str, text: str, case_sensitive: bool) -> dict[str, Any]:
    check: dict[str, Any] = {"kind": kind.value, "case_sensitive": case_sensitive}
    if not field or not text:
        return check
    if field == "json_schema":
        try:
            check["json_schema"] = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidError(f"The JSON schema is not valid JSON: {exc}.") from exc
    elif field == "fields":
        check["fields"] = [name.strip() for name in text.split(",") if name.strip()]
    else:
        check[field] = text
    return check


def _body_of(form: dict[str, Any]) -> RunCreate:
    """The form's fields as the API's body."""
    case_sensitive = not form["case_insensitive"]
    checks = [
        _check_of(kind, field, form["values"].get(kind.value, ""), case_sensitive)
        for kind, field, _ in _FORM_CHECKS
        if kind.value in form["ticked"]
    ]
    judge: dict[str, Any] = {}
    if form["judge_model"]:
        judge |= {"model": form["judge_model"], "rubric": form["rubric"]}
    if form["judge_prompt"]:
        judge |= {
            "judge_prompt": form["judge_prompt"],
            "judge_version": form["judge_version"] or None,
        }
    if judge:
        checks.append({"kind": "judge", **judge, "pass_score": form["pass_score"] or 0.5})
    return RunCreate.model_validate(
        {
            "set": form["set"],
            "set_version": form["set_version"] or None,
            "prompt": form["prompt"] or None,
            "version": (form["agent_version"] if form["agent"] else form["version"]) or None,
            "agent": form["agent"] or None,
            "checks": checks,
            "concurrency": form["concurrency"] or 4,
        }
    )


def _form_from_post(posted: FormData) -> dict[str, Any]:
    def text(key: str) -> str:
        return str(posted.get(key, "")).strip()

    return {
        **{
            key: text(key)
            for key in (
                "set",
                "set_version",
                "prompt",
                "version",
                "agent",
                "agent_version",
                "judge_model",
                "rubric",
                "judge_prompt",
                "judge_version",
                "pass_score",
                "concurrency",
            )
        },
        "ticked": [str(kind) for kind in posted.getlist("check")],
        "values": {kind.value: text(f"value:{kind.value}") for kind, _, _ in _FORM_CHECKS},
        "case_insensitive": bool(posted.get("case_insensitive")),
    }


async def _form_page(
    request: Request,
    actor: Actor,
    runs: EvalRuns,
    form: dict[str, Any],
    *,
    estimate: RunEstimate | None = None,
    status: int = 200,
    error: str | None = None,
) -> Response:
    set_versions, versions, production = await runs.choices(form["set"], form["prompt"])
    agent_versions, live = await runs.agent_choices(form["agent"], actor)
    return page(
        request,
        "eval_run_new.html",
        status=status,
        actor=actor,
        form=form,
        checks=_FORM_CHECKS,
        models=[entry.name for entry in runs.models.models],
        set_versions=set_versions,
        versions=versions,
        production=production,
        agent_versions=agent_versions,
        live=live,
        estimate=estimate,
        error=error,
    )


@router.get("/evaluation/runs")
async def runs_page(
    request: Request, actor: OptionalActor, runs: EvalRunsDep, set: str = "", prompt: str = ""
) -> Response:
    if actor is None:
        return to_login(request)
    found = await runs.find(set[:63] or None, prompt[:63] or None)
    return page(
        request, "eval_runs.html", actor=actor, runs=found, set=set, prompt=prompt, error=None
    )


@router.get("/evaluation/runs/new")
async def new_run_form(
    request: Request,
    actor: OptionalActor,
    runs: EvalRunsDep,
    set: str = "",
    prompt: str = "",
    agent: str = "",
) -> Response:
    if actor is None:
        return to_login(request)
    form = {
        "set": set[:63],
        "prompt": prompt[:63],
        "agent": agent[:63],
        "set_version": "",
        "version": "",
        "agent_version": "",
        "judge_model": "",
        "rubric": "",
        "judge_prompt": "",
        "judge_version": "",
        "pass_score": "0.5",
        "concurrency": "4",
        "ticked": [],
        "values": {},
        "case_insensitive": False,
    }
    return await _form_page(request, actor, runs, form)


@router.post("/evaluation/runs/new")
async def run_from_form(request: Request, actor: OptionalActor, runs: EvalRunsDep) -> Response:
    """ "Estimate" shows what the run would cost, with "Start"; "Start" makes it."""
    if actor is None:
        return to_login(request)
    posted = await request.form()
    form = _form_from_post(posted)
    try:
        body = _body_of(form)
        if posted.get("action") == "start":
            run = await runs.create(body, actor)
            return RedirectResponse(f"/evaluation/runs/{run.id}", status_code=303)
        estimate = await runs.estimate(body, actor)
    except (ValidationError, Refusal) as error:
        status, message = refusal_of(error)
        return await _form_page(request, actor, runs, form, status=status, error=message)
    return await _form_page(request, actor, runs, form, estimate=estimate)


def _whole(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


@router.get("/evaluation/runs/{run_id}")
async def run_page(
    request: Request, run_id: RowId, actor: OptionalActor, runs: EvalRunsDep
) -> Response:
    if actor is None:
        return to_login(request)
    offset = _whole(request.query_params.get("offset"))
    only_failed = request.query_params.get("only") == "failed"
    try:
        run = await runs.get(run_id)
        results = await runs.results(
            run_id, offset=offset, limit=RESULTS_PER_PAGE, only_failed=only_failed
        )
        others = await runs.find(run.set, None)
        may_cancel = await runs.may_cancel(run_id, actor)
    except Refusal as refusal:
        status, message = refusal_of(refusal)
        return page(
            request,
            "eval_runs.html",
            status=status,
            actor=actor,
            runs=[],
            set="",
            prompt="",
            error=message,
        )
    return page(
        request,
        "eval_run.html",
        actor=actor,
        run=run,
        results=results,
        only_failed=only_failed,
        per_page=RESULTS_PER_PAGE,
        may_cancel=may_cancel,
        # An agent's case links to its trace (found by its conversation).
        traces={
            r.case_id: "/traces?"
            + urlencode({"agent": run.target, "conversation": case_conversation(run_id, r.case_id)})
            for r in results.results
            if run.target_kind == "agent"
        },
        comparable=[
            other.id
            for other in others
            if other.set_version == run.set_version and other.id != run.id
        ],
    )


@router.post("/evaluation/runs/{run_id}/cancel")
async def cancel_from_form(
    request: Request, run_id: RowId, actor: OptionalActor, runs: EvalRunsDep
) -> Response:
    if actor is None:
        return to_login(request)
    await runs.cancel(run_id, actor)
    return RedirectResponse(f"/evaluation/runs/{run_id}", status_code=303)


@router.get("/evaluation/runs/{before}/compare/{after}")
async def compare_page(
    request: Request, before: RowId, after: RowId, actor: OptionalActor, runs: EvalRunsDep
) -> Response:
    if actor is None:
        return to_login(request)
    comparison, status, error = None, 200, None
    try:
        comparison = await runs.compare(before, after)
    except Refusal as refusal:
        status, error = refusal_of(refusal)
    return page(
        request,
        "eval_run_compare.html",
        status=status,
        actor=actor,
        comparison=comparison,
        before=before,
        after=after,
        error=error,
    )
