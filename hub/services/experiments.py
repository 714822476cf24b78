"""Experiments in the database: making, finding and stopping them, their calls and outcomes.

The budget of answers of the arm not served is taken one at a time by one UPDATE that only
succeeds while some is left, so hub processes sharing the database never spend more than it.
"""

from sqlmodel import Session, col, func, select, update

from hub.models.experiment import (
    Experiment,
    ExperimentCall,
    ExperimentOutcome,
    ExperimentStatus,
    ShadowStatus,
)
from hub.models.service import utcnow

__all__ = [
    "calls_of",
    "count_calls",
    "finish_call",
    "get_experiment",
    "list_experiments",
    "outcomes_of",
    "record_call",
    "running_experiments",
    "save_outcome",
    "take_budget",
]

RUNNING = ExperimentStatus.running.value


def get_experiment(*, session: Session, experiment_id: int) -> Experiment | None:
    return session.get(Experiment, experiment_id)


def list_experiments(
    *, session: Session, prompt: str | None, offset: int = 0, limit: int = 200
) -> list[Experiment]:
    query = select(Experiment).order_by(col(Experiment.id).desc()).offset(offset).limit(limit)
    if prompt:
        query = query.where(Experiment.prompt == prompt)
    return list(session.exec(query))


def running_experiments(*, session: Session) -> list[Experiment]:
    return list(session.exec(select(Experiment).where(Experiment.status == RUNNING)))


def record_call(*, session: Session, call: ExperimentCall) -> ExperimentCall:
    session.add(call)
    session.commit()
    session.refresh(call)
    return call


def take_budget(*, session: Session, experiment_id: int) -> bool:
    """Count one more answer of the arm not served, if the experiment runs and has budget."""
    taken = session.exec(
        update(Experiment)
        .where(
            col(Experiment.id) == experiment_id,
            col(Experiment.status) == RUNNING,
            col(Experiment.shadow_calls) < col(Experiment.budget),
        )
        .values(shadow_calls=Experiment.shadow_calls + 1)
    )
    session.commit()
    return bool(taken.rowcount)


def finish_call(*, session: Session, call_id: int, changes: dict[str, object]) -> None:
    session.exec(update(ExperimentCall).where(col(ExperimentCall.id) == call_id).values(**changes))
    session.commit()


def count_calls(*, session: Session, experiment_id: int) -> tuple[int, int, int]:
    """The experiment's calls, exposures (answers differ) and calls still waiting."""
    rows = session.exec(
        select(ExperimentCall.differs, ExperimentCall.shadow, func.count())
        .where(ExperimentCall.experiment_id == experiment_id)
        .group_by(col(ExperimentCall.differs), col(ExperimentCall.shadow))
    )
    calls = exposures = pending = 0
    for differs, shadow, count in rows:
        calls += count
        exposures += count if differs else 0
        pending += count if shadow == ShadowStatus.pending.value else 0
    return calls, exposures, pending


def calls_of(
    *, session: Session, experiment_id: int, offset: int = 0, limit: int | None = None
) -> list[ExperimentCall]:
    query = (
        select(ExperimentCall)
        .where(ExperimentCall.experiment_id == experiment_id)
        .order_by(col(ExperimentCall.id))
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def outcomes_of(*, session: Session, experiment_id: int) -> list[ExperimentOutcome]:
    return list(
        session.exec(
            select(ExperimentOutcome).where(ExperimentOutcome.experiment_id == experiment_id)
        )
    )


def save_outcome(
    *, session: Session, experiment_id: int, unit: str, value: float, reported_by: str
) -> ExperimentOutcome:
    """The unit's outcome, replacing one reported before."""
    outcome = session.exec(
        select(ExperimentOutcome)
        .where(ExperimentOutcome.experiment_id == experiment_id, ExperimentOutcome.unit == unit)
        .with_for_update()
    ).first() or ExperimentOutcome(
        experiment_id=experiment_id, unit=unit, value=value, reported_by=reported_by
    )
    outcome.value, outcome.reported_by, outcome.reported_at = value, reported_by, utcnow()
    session.add(outcome)
    return outcome
