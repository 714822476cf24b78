"""Judges calibrated by people: labels on a run's rows, calibrations of a judge prompt's
version against them, and the kappa threshold above which a judge counts as calibrated.

Anyone signed in reads labels and calibrations. Builders of the run's team and admins label its
rows; the judge prompt's team's builders (and its services) and admins calibrate it and set its
threshold. A calibration judges every labelled row within its request (at most
`MAX_CALIBRATION_LABELS`, `CALIBRATION_CONCURRENCY` at once), through the gateway as the
service `evaluation` with the judge prompt's team.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
from sqlalchemy import Engine
from sqlmodel import Session

from hub.core.config import EVALUATION_SERVICE_NAME
from hub.core.errors import InvalidError, NotFoundError, PermissionDeniedError
from hub.core.roles import Permission
from hub.evaluation.agreement import agreement
from hub.evaluation.judge_prompts import JudgeVerdict, judge_answer, load_judge_version
from hub.gateway.proxy import Gateway
from hub.models.actor import Actor
from hub.models.eval_judge import (
    MAX_CALIBRATION_LABELS,
    CalibrationCreate,
    CalibrationPublic,
    ConfusionMatrix,
    Disagreement,
    EvalCalibration,
    EvalLabel,
    EvalVerdict,
    JudgePublic,
    LabelPublic,
    LabelSet,
)
from hub.models.evaluation import EvalCase, EvalRun, ResultStatus
from hub.models.prompt import Prompt, PromptVersion
from hub.services import eval_judges as store
from hub.services import eval_runs as runs_store
from hub.services import prompts as prompt_store
from hub.services.audit import record_event
from hub.services.service_accounts import ServiceIdentity

__all__ = ["CALIBRATION_CONCURRENCY", "EvalJudges", "require_manager"]

T = TypeVar("T")
CALIBRATION_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class _Row:
    label: EvalLabel
    case: EvalCase
    answer: str


def _run(session: Session, run_id: int) -> EvalRun:
    run = runs_store.get_run(session=session, run_id=run_id)
    if run is None:
        raise NotFoundError(f"No evaluation run {run_id} exists.")
    return run


def require_manager(actor: Actor, team: str, what: str) -> None:
    actor.require(Permission.build)
    if not actor.can_manage(team):
        raise PermissionDeniedError(f"Only team {team!r}'s builders or an admin can {what}.")


def _judge_prompt(session: Session, name: str) -> Prompt:
    prompt = prompt_store.get_prompt(session=session, name=name)
    if prompt is None:
        raise NotFoundError(f"No judge prompt {name!r} exists.")
    return prompt


def _label_public(label: EvalLabel, case: EvalCase) -> LabelPublic:
    return LabelPublic(
        case_id=label.case_id,
        position=case.position,
        passed=label.passed,
        note=label.note,
        labelled_by=label.labelled_by,
        labelled_at=label.labelled_at,
    )


def _calibration_public(
    calibration: EvalCalibration, disagreements: list[Disagreement]
) -> CalibrationPublic:
    assert calibration.id is not None
    return CalibrationPublic(
        id=calibration.id,
        prompt=calibration.prompt,
        version=calibration.version,
        run=calibration.run_id,
        pass_score=calibration.pass_score,
        labels=calibration.labels,
        accuracy=calibration.accuracy,
        kappa=calibration.kappa,
        confusion=ConfusionMatrix(
            both_pass=calibration.both_pass,
            judge_pass_people_fail=calibration.judge_pass_people_fail,
            judge_fail_people_pass=calibration.judge_fail_people_pass,
            both_fail=calibration.both_fail,
        ),
        cost_usd=calibration.cost_usd,
        created_by=calibration.created_by,
        created_at=calibration.created_at,
        disagreements=disagreements,
    )


def _disagreements(session: Session, calibration: EvalCalibration) -> list[Disagreement]:
    rows = store.verdicts_of(session=session, calibration=calibration, disagreeing=True)
    return [
        Disagreement(
            case_id=verdict.case_id,
            position=verdict.position,
            variables=case.variables,
            expected=case.expected,
            answer=answer,
            judge_passed=verdict.passed,
            score=verdict.score,
            reason=verdict.reason,
            people_passed=verdict.people_passed,
            note=verdict.note,
        )
        for verdict, case, answer in rows
    ]


class EvalJudges:
    def __init__(self, *, engine: Engine, gateway: Gateway, service_id: int) -> None:
        self._engine = engine
        self._gateway = gateway
        self._service_id = service_id

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    # -- Labels ----------------------------------------------------------------------------

    async def labels(self, run_id: int) -> list[LabelPublic]:
        """The run's labels in the cases' order."""

        def work(session: Session) -> list[LabelPublic]:
            _run(session, run_id)
            rows = store.labelled_rows(session=session, run_id=run_id)
            return [_label_public(label, case) for label, case, _ in rows]

        return await self._db(work)

    async def set_label(
        self, run_id: int, case_id: int, body: LabelSet, actor: Actor
    ) -> LabelPublic:
        """Mark the run's row of `case_id` pass or fail; it replaces the last label."""

        def work(session: Session) -> LabelPublic:
            run = _run(session, run_id)
            require_manager(actor, run.team, f"label the rows of run {run_id}")
            result = store.result_of(session=session, run_id=run_id, case_id=case_id)
            if result is None:
                raise NotFoundError(f"Run {run_id} has no row for case {case_id}.")
            if result.status != ResultStatus.done.value:
                raise InvalidError(
                    f"The row of case {case_id} has no answer ({result.status}); only answered "
                    "rows are labelled."
                )
            label = store.set_label(
                session=session,
                run_id=run_id,
                case_id=case_id,
                passed=body.passed,
                note=body.note,
                by=actor.name,
            )
            case = session.get(EvalCase, case_id)
            assert case is not None
            return _label_public(label, case)

        return await self._db(work)

    async def delete_label(self, run_id: int, case_id: int, actor: Actor) -> None:
        def work(session: Session) -> None:
            run = _run(session, run_id)
            require_manager(actor, run.team, f"label the rows of run {run_id}")
            if not store.delete_label(session=session, run_id=run_id, case_id=case_id):
                raise NotFoundError(f"Run {run_id} has no label for case {case_id}.")

        await self._db(work)

    # -- Calibrations ----------------------------------------------------------------------

    async def calibrate(
        self, name: str, body: CalibrationCreate, actor: Actor
    ) -> CalibrationPublic:
        """Judge every labelled row of the run with the judge prompt's version and keep how
        far it agrees with people."""

        def plan(session: Session) -> tuple[Prompt, PromptVersion, list[_Row]]:
            require_manager(
                actor, _judge_prompt(session, name).team, f"calibrate the judge {name!r}"
            )
            prompt, version = load_judge_version(session, name, body.version)
            _run(session, body.run)
            rows = [
                _Row(label, case, result.output or "")
                for label, case, result in store.labelled_rows(session=session, run_id=body.run)
                if result is not None
            ]
            if not rows:
                raise InvalidError(
                    f"Run {body.run} has no labelled rows; label some on "
                    f"/evaluation/runs/{body.run}/label first."
                )
            if len(rows) > MAX_CALIBRATION_LABELS:
                raise InvalidError(
                    f"Run {body.run} has {len(rows)} labelled rows; a calibration judges at "
                    f"most {MAX_CALIBRATION_LABELS}."
                )
            return prompt, version, rows

        prompt, version, rows = await self._db(plan)
        service = ServiceIdentity(
            id=self._service_id, name=EVALUATION_SERVICE_NAME, team=prompt.team, is_admin=False
        )
        limit = asyncio.Semaphore(CALIBRATION_CONCURRENCY)

        async def judged(row: _Row) -> JudgeVerdict:
            async with limit:
                return await judge_answer(
                    self._gateway,
                    service,
                    name,
                    version,
                    row.case.variables,
                    row.case.expected,
                    row.answer,
                    body.pass_score,
                )

        verdicts = await asyncio.gather(*(judged(row) for row in rows))

        def save(session: Session) -> CalibrationPublic:
            matrix, accuracy, kappa = agreement(
                [(v.passed, row.label.passed) for v, row in zip(verdicts, rows, strict=True)]
            )
            calibration = EvalCalibration(
                prompt=name,
                version=version.number,
                run_id=body.run,
                pass_score=body.pass_score,
                labels=len(rows),
                **matrix.model_dump(),
                accuracy=accuracy,
                kappa=kappa,
                cost_usd=sum(v.cost_usd for v in verdicts),
                created_by=actor.name,
            )
            session.add(calibration)
            session.flush()
            assert calibration.id is not None
            session.add_all(
                EvalVerdict(
                    calibration_id=calibration.id,
                    case_id=row.label.case_id,
                    position=row.case.position,
                    passed=verdict.passed,
                    score=verdict.score,
                    reason=verdict.reason,
                    people_passed=row.label.passed,
                    note=row.label.note,
                )
                for verdict, row in zip(verdicts, rows, strict=True)
            )
            record_event(
                session=session,
                actor=actor,
                action="eval_judge.calibrated",
                object_kind="prompt",
                object_id=name,
                details={"version": version.number, "run": body.run, "kappa": kappa},
            )
            session.commit()
            session.refresh(calibration)
            return _calibration_public(calibration, _disagreements(session, calibration))

        return await self._db(save)

    async def judge(self, name: str) -> JudgePublic:
        """The judge prompt's calibrations, newest first (the newest with its disagreements),
        its threshold and whether it counts as calibrated."""

        def work(session: Session) -> JudgePublic:
            prompt = _judge_prompt(session, name)
            calibrations = store.list_calibrations(session=session, prompt=name)
            found = store.get_judge(session=session, prompt=name)
            threshold = found.kappa_threshold if found is not None else None
            latest = calibrations[0] if calibrations else None
            return JudgePublic(
                prompt=name,
                team=prompt.team,
                kappa_threshold=threshold,
                calibrated=(
                    threshold is not None
                    and latest is not None
                    and latest.kappa is not None
                    and latest.kappa >= threshold
                ),
                calibrations=[
                    _calibration_public(c, _disagreements(session, c) if c is latest else [])
                    for c in calibrations
                ],
            )

        return await self._db(work)

    async def set_threshold(self, name: str, kappa: float, actor: Actor) -> JudgePublic:
        """The kappa at or above which the judge counts as calibrated."""

        def work(session: Session) -> None:
            prompt = _judge_prompt(session, name)
            require_manager(actor, prompt.team, f"set the threshold of the judge {name!r}")
            store.set_threshold(session=session, prompt=name, kappa=kappa, by=actor.name)
            record_event(
                session=session,
                actor=actor,
                action="eval_judge.threshold_set",
                object_kind="prompt",
                object_id=name,
                details={"kappa": kappa},
            )
            session.commit()

        await self._db(work)
        return await self.judge(name)
