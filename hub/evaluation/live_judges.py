"""Live judges: a prompt's owners bind a calibrated judge to its calls by name, with the share
to sample and a daily cap; anyone signed in reads the verdicts and their pass rates.

A binding names a judge prompt's version that its latest calibration measured, while that
calibration's kappa is at least the judge's threshold; it judges with that calibration's pass
score. A live call has no expected output, so the judge's messages must use `{{answer}}` and
must not use `{{expected}}`. The sampling and judging happen in hub/evaluation/live_scorer.py.
"""

from collections.abc import Callable
from typing import TypeVar

import anyio
from sqlalchemy import Engine
from sqlmodel import Session

from hub.core.errors import InvalidError, NotFoundError
from hub.evaluation.judge_prompts import load_judge_version
from hub.evaluation.judges import EvalJudges, require_manager
from hub.evaluation.live_scorer import LiveScorer
from hub.models.actor import Actor
from hub.models.eval_judge import JudgePublic
from hub.models.live_judge import (
    LiveJudge,
    LiveJudgePublic,
    LiveJudgeSet,
    LiveScorePublic,
    LiveScoresPublic,
)
from hub.models.prompt import Prompt
from hub.models.service import utcnow
from hub.services import live_judges as store
from hub.services import prompts as prompt_store
from hub.services.audit import record_event

__all__ = ["LATEST_SHOWN", "LiveJudges"]

T = TypeVar("T")
# The newest verdicts shown with the figures.
LATEST_SHOWN = 20


def _prompt(session: Session, name: str) -> Prompt:
    prompt = prompt_store.get_prompt(session=session, name=name)
    if prompt is None:
        raise NotFoundError(f"No prompt {name!r} exists.")
    return prompt


def _measured_version(judge: JudgePublic, wanted: int | None) -> tuple[int, float]:
    """The judge's version to bind and its pass score: the version its latest calibration
    measured, while the judge counts as calibrated."""
    name = judge.prompt
    if not judge.calibrations:
        raise InvalidError(
            f"The judge {name!r} has no calibration; calibrate it on /evaluation/judges/{name} "
            "first."
        )
    latest = judge.calibrations[0]
    kappa = "undefined" if latest.kappa is None else f"{latest.kappa:.3f}"
    if not judge.calibrated:
        threshold = (
            "no threshold set by its owners"
            if judge.kappa_threshold is None
            else f"below its threshold {judge.kappa_threshold:.3f}"
        )
        raise InvalidError(
            f"The judge {name!r} is not calibrated: its latest calibration (v{latest.version}) "
            f"has kappa {kappa}, {threshold}."
        )
    if wanted is not None and wanted != latest.version:
        raise InvalidError(
            f"The judge {name!r}'s latest calibration measured v{latest.version}, not "
            f"v{wanted}: bind v{latest.version}, or calibrate v{wanted} first."
        )
    return latest.version, latest.pass_score


def _binding_public(binding: LiveJudge) -> LiveJudgePublic:
    today = utcnow().date().isoformat()
    return LiveJudgePublic(
        judge=binding.judge_prompt,
        version=binding.judge_version,
        pass_score=binding.pass_score,
        share=binding.share,
        daily_cap=binding.daily_cap,
        judged_today=binding.judged_on_day if binding.day == today else 0,
        updated_by=binding.updated_by,
        updated_at=binding.updated_at,
    )


class LiveJudges:
    def __init__(self, *, engine: Engine, judges: EvalJudges, scorer: LiveScorer) -> None:
        self._engine = engine
        self._judges = judges
        self._scorer = scorer

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    async def scores(self, name: str) -> LiveScoresPublic:
        """The prompt's binding, its verdicts' figures per version and the newest verdicts."""

        def work(session: Session) -> LiveScoresPublic:
            prompt = _prompt(session, name)
            binding = store.get_binding(session=session, prompt=name)
            latest = store.latest_scores(session=session, prompt=name, limit=LATEST_SHOWN)
            return LiveScoresPublic(
                prompt=name,
                team=prompt.team,
                binding=_binding_public(binding) if binding is not None else None,
                figures=store.figures(session=session, prompt=name, now=utcnow()),
                latest=[
                    LiveScorePublic(
                        id=score.id or 0,
                        version=score.version,
                        judge=score.judge_prompt,
                        judge_version=score.judge_version,
                        score=score.score,
                        passed=score.passed,
                        reason=score.reason,
                        answer=score.answer,
                        cost_usd=score.cost_usd,
                        judged_at=score.judged_at,
                    )
                    for score in latest
                ],
                this_process=self._scorer.counts(),
            )

        return await self._db(work)

    async def bind(self, name: str, body: LiveJudgeSet, actor: Actor) -> LiveScoresPublic:
        """Judge a share of the prompt's calls by name with a calibrated judge."""

        def owners(session: Session) -> None:
            require_manager(actor, _prompt(session, name).team, f"set the live judge of {name!r}")

        await self._db(owners)
        version, pass_score = _measured_version(await self._judges.judge(body.judge), body.version)

        def work(session: Session) -> None:
            _, judge_version = load_judge_version(session, body.judge, version)
            used = prompt_store.variables_of(judge_version)
            where = f"The judge {body.judge!r} v{version}"
            if "expected" in used:
                raise InvalidError(
                    f"{where} uses {{{{expected}}}}; a live call has no expected output, so a "
                    "live judge may only use {{input}} and {{answer}}."
                )
            if "answer" not in used:
                raise InvalidError(
                    f"{where} does not use {{{{answer}}}}: it cannot see the answer."
                )
            binding = LiveJudge(
                prompt=name,
                judge_prompt=body.judge,
                judge_version=version,
                pass_score=pass_score,
                share=body.share,
                daily_cap=body.daily_cap,
                updated_by=actor.name,
            )
            record_event(
                session=session,
                actor=actor,
                action="live_judge.set",
                object_kind="prompt",
                object_id=name,
                details={"judge": body.judge, "version": version, "share": body.share},
            )
            store.set_binding(session=session, binding=binding)

        await self._db(work)
        await self._scorer.reload()
        return await self.scores(name)

    async def unbind(self, name: str, actor: Actor) -> None:
        """Stop judging the prompt's calls; the verdicts stay."""

        def work(session: Session) -> None:
            require_manager(
                actor, _prompt(session, name).team, f"remove the live judge of {name!r}"
            )
            if store.get_binding(session=session, prompt=name) is None:
                raise NotFoundError(f"No live judge scores the calls of {name!r}.")
            record_event(
                session=session,
                actor=actor,
                action="live_judge.removed",
                object_kind="prompt",
                object_id=name,
            )
            store.delete_binding(session=session, prompt=name)

        await self._db(work)
        await self._scorer.reload()
