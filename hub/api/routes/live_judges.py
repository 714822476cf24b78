"""Live judges: a calibrated judge scoring a share of a prompt's calls by name."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from hub.api.deps import CurrentActor, HubStateDep
from hub.api.routes.eval_judges import EvalJudgesDep
from hub.evaluation.live_judges import LiveJudges
from hub.models.live_judge import LiveJudgeSet, LiveScoresPublic

__all__ = ["LiveJudgesDep", "router"]


async def get_live_judges(hub_state: HubStateDep, judges: EvalJudgesDep) -> LiveJudges:
    return LiveJudges(engine=hub_state.engine, judges=judges, scorer=hub_state.live_scorer)


LiveJudgesDep = Annotated[LiveJudges, Depends(get_live_judges)]

router = APIRouter(prefix="/api/prompts", tags=["prompts"])


@router.get("/{name}/live-judge", response_model=LiveScoresPublic)
async def get_live_judge(name: str, _: CurrentActor, live: LiveJudgesDep) -> LiveScoresPublic:
    """The prompt's live judge (null when none), the pass rate and number judged over the last
    24 hours and 7 days per version, and the newest verdicts."""
    return await live.scores(name)


@router.put("/{name}/live-judge", response_model=LiveScoresPublic)
async def set_live_judge(
    name: str, body: LiveJudgeSet, actor: CurrentActor, live: LiveJudgesDep
) -> LiveScoresPublic:
    """Judge `share` (0 to 1) of the prompt's calls by name, at most `daily_cap` a UTC day,
    with a calibrated judge's version (the one its latest calibration measured); the prompt's
    team's builders and admins."""
    return await live.bind(name, body, actor)


@router.delete("/{name}/live-judge", status_code=204)
async def delete_live_judge(name: str, actor: CurrentActor, live: LiveJudgesDep) -> Response:
    """Stop judging the prompt's calls; the verdicts stay."""
    await live.unbind(name, actor)
    return Response(status_code=204)
