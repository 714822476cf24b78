"""Evaluation runs in the database: making and listing runs, claiming cases, and results.

A case is claimed by inserting its result row (status `started`): the unique (run, case)
constraint lets only one runner, in any hub process, claim it. A `started` row whose process
died is claimed again by moving its `started_at` forward, in one UPDATE that only succeeds for
the runner that read the old time.
"""

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, select, update

from hub.models.evaluation import (
    EvalCase,
    EvalResult,
    EvalRun,
    EvalSet,
    EvalSetVersion,
    ResultStatus,
    RunProgress,
    RunStatus,
)
from hub.models.service import utcnow

__all__ = [
    "ACTIVE",
    "active_run_ids",
    "cancel_run",
    "claim_abandoned",
    "claim_new_cases",
    "fail_run",
    "finish_if_complete",
    "get_run",
    "list_cases",
    "list_runs",
    "progress_of",
    "release_result",
    "results_with_cases",
    "save_result",
    "set_names",
    "set_version_numbers",
    "set_version_of",
    "start_run",
]

ACTIVE = (RunStatus.queued.value, RunStatus.running.value)
_FINISHED = (ResultStatus.done.value, ResultStatus.error.value)


def list_cases(*, session: Session, version_id: int) -> list[EvalCase]:
    query = (
        select(EvalCase).where(EvalCase.version_id == version_id).order_by(col(EvalCase.position))
    )
    return list(session.exec(query).all())


def set_names(*, session: Session, set_ids: set[int]) -> dict[int, str]:
    query = select(EvalSet.id, EvalSet.name).where(col(EvalSet.id).in_(set_ids))
    return {set_id: name for set_id, name in session.exec(query).all() if set_id is not None}


def get_run(*, session: Session, run_id: int) -> EvalRun | None:
    return session.get(EvalRun, run_id)


def list_runs(
    *, session: Session, set_id: int | None, prompt: str | None, offset: int = 0, limit: int = 200
) -> list[EvalRun]:
    query = select(EvalRun).order_by(col(EvalRun.id).desc()).offset(offset).limit(limit)
    if set_id is not None:
        query = query.where(EvalRun.set_id == set_id)
    if prompt:
        query = query.where(EvalRun.target_kind == "prompt", EvalRun.target == prompt)
    return list(session.exec(query).all())


def progress_of(*, session: Session, runs: list[EvalRun]) -> dict[int, RunProgress]:
    """Each run's results counted by status."""
    ids = [run.id for run in runs if run.id is not None]
    counts: dict[tuple[int, str], int] = {}
    if ids:
        query = (
            select(EvalResult.run_id, EvalResult.status, func.count())
            .where(col(EvalResult.run_id).in_(ids))
            .group_by(col(EvalResult.run_id), col(EvalResult.status))
        )
        counts = {(run_id, status): n for run_id, status, n in session.exec(query).all()}
    return {
        run.id: RunProgress(
            done=counts.get((run.id, ResultStatus.done.value), 0),
            errors=counts.get((run.id, ResultStatus.error.value), 0),
            in_flight=counts.get((run.id, ResultStatus.started.value), 0),
            total=run.cases,
        )
        for run in runs
        if run.id is not None
    }


def results_with_cases(
    *, session: Session, run_id: int, only_failed: bool = False
) -> list[tuple[EvalResult, EvalCase]]:
    """The run's results in the cases' order, each with its case."""
    query = (
        select(EvalResult, EvalCase)
        .join(EvalCase, col(EvalCase.id) == EvalResult.case_id)
        .where(EvalResult.run_id == run_id)
        .order_by(col(EvalResult.position))
    )
    if only_failed:
        query = query.where(
            (col(EvalResult.status) == ResultStatus.error.value)
            | ((col(EvalResult.status) == ResultStatus.done.value) & ~col(EvalResult.passed))
        )
    return [(result, case) for result, case in session.exec(query).all()]


def active_run_ids(*, session: Session) -> list[int]:
    query = select(EvalRun.id).where(col(EvalRun.status).in_(ACTIVE)).order_by(col(EvalRun.id))
    return [run_id for run_id in session.exec(query).all() if run_id is not None]


def start_run(*, session: Session, run_id: int) -> None:
    """A queued run is running from now on (a no-op for a run already running)."""
    session.exec(
        update(EvalRun)
        .where(col(EvalRun.id) == run_id, col(EvalRun.status) == RunStatus.queued.value)
        .values(status=RunStatus.running.value, started_at=utcnow())
    )
    session.commit()


def claim_new_cases(
    *, session: Session, run: EvalRun, version_id: int, limit: int
) -> list[tuple[EvalResult, EvalCase]]:
    """Up to `limit` cases that have no result yet, each claimed by inserting its result; a
    case another runner claimed at the same moment is skipped."""
    taken = select(EvalResult.case_id).where(EvalResult.run_id == run.id)
    query = (
        select(EvalCase)
        .where(EvalCase.version_id == version_id, col(EvalCase.id).not_in(taken))
        .order_by(col(EvalCase.position))
        .limit(limit)
    )
    assert run.id is not None
    claimed = []
    for case in session.exec(query).all():
        assert case.id is not None
        result = EvalResult(run_id=run.id, case_id=case.id, position=case.position)
        session.add(result)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        session.refresh(result)
        claimed.append((result, case))
    if claimed and not _still_active(session, run.id):
        # Cancelled meanwhile: give them back. A case is only sent when its claim was made
        # before the cancel, so a caller that sees the cancel sees every case still out.
        for result, _ in claimed:
            session.delete(result)
        session.commit()
        return []
    return claimed


def _still_active(session: Session, run_id: int) -> bool:
    status = session.exec(select(EvalRun.status).where(EvalRun.id == run_id)).first()
    return status in ACTIVE


def claim_abandoned(
    *, session: Session, run_id: int, older_than: datetime, skip: set[int], limit: int
) -> list[tuple[EvalResult, EvalCase]]:
    """Up to `limit` cases whose `started` result is older than `older_than` (their hub
    died), claimed again; `skip` holds results this process is still answering."""
    query = (
        select(EvalResult, EvalCase)
        .join(EvalCase, col(EvalCase.id) == EvalResult.case_id)
        .where(
            EvalResult.run_id == run_id,
            EvalResult.status == ResultStatus.started.value,
            col(EvalResult.started_at) < older_than,
            col(EvalResult.id).not_in(skip or {0}),
        )
        .order_by(col(EvalResult.position))
        .limit(limit)
    )
    claimed = []
    for result, case in session.exec(query).all():
        now = utcnow()
        moved = session.exec(
            update(EvalResult)
            .where(
                col(EvalResult.id) == result.id,
                col(EvalResult.started_at) == result.started_at,
                col(EvalResult.status) == ResultStatus.started.value,
            )
            .values(started_at=now)
        )
        session.commit()
        if moved.rowcount == 1:
            claimed.append((result, case))
    return claimed


def save_result(*, session: Session, result_id: int, values: dict[str, Any]) -> None:
    """A claimed case's answer and outcomes (or its error)."""
    session.exec(
        update(EvalResult)
        .where(col(EvalResult.id) == result_id)
        .values(**values, finished_at=utcnow())
    )
    session.commit()


def release_result(*, session: Session, result_id: int) -> None:
    """Give a claimed case back (its answer was cut off), so the next runner claims it at
    once rather than after the abandonment deadline."""
    session.exec(
        delete(EvalResult).where(
            col(EvalResult.id) == result_id, col(EvalResult.status) == ResultStatus.started.value
        )
    )
    session.commit()


def finish_if_complete(*, session: Session, run: EvalRun) -> bool:
    """Mark the run finished when every case has a done or error result."""
    finished = session.exec(
        select(func.count()).where(
            EvalResult.run_id == run.id, col(EvalResult.status).in_(_FINISHED)
        )
    ).one()
    if finished < run.cases:
        return False
    session.exec(
        update(EvalRun)
        .where(col(EvalRun.id) == run.id, col(EvalRun.status).in_(ACTIVE))
        .values(status=RunStatus.finished.value, finished_at=utcnow())
    )
    session.commit()
    return True


def cancel_run(*, session: Session, run: EvalRun) -> EvalRun:
    """Stop claiming cases for the run; those being answered finish."""
    session.exec(
        update(EvalRun)
        .where(col(EvalRun.id) == run.id, col(EvalRun.status).in_(ACTIVE))
        .values(status=RunStatus.cancelled.value, finished_at=utcnow())
    )
    session.commit()
    session.refresh(run)
    return run


def fail_run(*, session: Session, run_id: int, message: str) -> None:
    """The run cannot go on (its prompt version or a check is gone bad); `message` says why."""
    session.exec(
        update(EvalRun)
        .where(col(EvalRun.id) == run_id, col(EvalRun.status).in_(ACTIVE))
        .values(status=RunStatus.failed.value, message=message[:2000], finished_at=utcnow())
    )
    session.commit()


def set_version_of(*, session: Session, run: EvalRun) -> EvalSetVersion | None:
    query = select(EvalSetVersion).where(
        EvalSetVersion.set_id == run.set_id, EvalSetVersion.number == run.set_version
    )
    return session.exec(query).first()


def set_version_numbers(*, session: Session, set_id: int) -> list[int]:
    """The set's version numbers, newest first."""
    query = select(EvalSetVersion.number).where(EvalSetVersion.set_id == set_id)
    return list(session.exec(query.order_by(col(EvalSetVersion.number).desc())).all())
