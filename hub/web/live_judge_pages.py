"""A prompt's live scores page: its live judge, the pass rate and number judged over the last
24 hours and 7 days per version, the newest verdicts, and (for its owners) the form that binds
or removes the judge. It uses the same `LiveJudges` calls as the API."""

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from hub.api.deps import OptionalActor
from hub.api.routes.live_judges import LiveJudgesDep
from hub.core.errors import Refusal
from hub.core.roles import Permission
from hub.evaluation.live_judges import LiveJudges
from hub.models.actor import Actor
from hub.models.live_judge import DEFAULT_DAILY_CAP, LiveJudgeSet
from hub.web.pages import page, refusal_of, to_login

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


async def _live_page(
    request: Request,
    actor: Actor,
    name: str,
    live: LiveJudges,
    *,
    status: int = 200,
    error: str | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    try:
        scores = await live.scores(name)
    except Refusal as refusal:
        status, message = refusal_of(refusal)
        return page(
            request, "live_judge.html", status=status, actor=actor, live=None, error=message
        )
    binding = scores.binding
    form = typed or {
        "judge": binding.judge if binding else "",
        "version": str(binding.version) if binding else "",
        "share": f"{binding.share:g}" if binding else "0.05",
        "daily_cap": str(binding.daily_cap if binding else DEFAULT_DAILY_CAP),
    }
    return page(
        request,
        "live_judge.html",
        status=status,
        actor=actor,
        live=scores,
        may_manage=actor.may(Permission.build) and actor.can_manage(scores.team),
        form=form,
        error=error,
    )


@router.get("/prompts/{name}/live-judge")
async def live_page(
    request: Request, name: str, actor: OptionalActor, live: LiveJudgesDep
) -> Response:
    if actor is None:
        return to_login(request)
    return await _live_page(request, actor, name[:63], live)


@router.post("/prompts/{name}/live-judge")
async def bind_from_form(
    request: Request, name: str, actor: OptionalActor, live: LiveJudgesDep
) -> Response:
    if actor is None:
        return to_login(request)
    posted = await request.form()
    typed = {
        key: str(posted.get(key, "")).strip() for key in ("judge", "version", "share", "daily_cap")
    }
    try:
        body = LiveJudgeSet.model_validate(
            {
                "judge": typed["judge"],
                "version": typed["version"] or None,
                "share": typed["share"],
                "daily_cap": typed["daily_cap"] or DEFAULT_DAILY_CAP,
            }
        )
        await live.bind(name, body, actor)
    except (ValidationError, Refusal) as error:
        status, message = refusal_of(error)
        return await _live_page(
            request, actor, name, live, status=status, error=message, typed=typed
        )
    return RedirectResponse(f"/prompts/{name}/live-judge", status_code=303)


@router.post("/prompts/{name}/live-judge/delete")
async def unbind_from_form(
    request: Request, name: str, actor: OptionalActor, live: LiveJudgesDep
) -> Response:
    if actor is None:
        return to_login(request)
    try:
        await live.unbind(name, actor)
    except Refusal as error:
        status, message = refusal_of(error)
        return await _live_page(request, actor, name, live, status=status, error=message)
    return RedirectResponse(f"/prompts/{name}/live-judge", status_code=303)
