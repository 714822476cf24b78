"""People's labels on runs' rows, judges' calibrations and thresholds, in the database."""

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.models.eval_judge import EvalCalibration, EvalJudge, EvalLabel, EvalVerdict
from hub.models.evaluation import EvalCase, EvalResult
from hub.models.service import utcnow

__all__ = [
    "delete_label",
    "get_judge",
    "labelled_rows",
    "list_calibrations",
    "result_of",
    "set_label",
    "set_threshold",
    "verdicts_of",
]


def set_label(
    *, session: Session, run_id: int, case_id: int, passed: bool, note: str, by: str
) -> EvalLabel:
    """The case's label on the run, replacing one given before."""
    query = select(EvalLabel).where(EvalLabel.run_id == run_id, EvalLabel.case_id == case_id)
    label = session.exec(query.with_for_update()).first() or EvalLabel(
        run_id=run_id, case_id=case_id, passed=passed, labelled_by=by
    )
    label.passed, label.note, label.labelled_by, label.labelled_at = passed, note, by, utcnow()
    session.add(label)
    try:
        session.commit()
    except IntegrityError:
        # Another request labelled the row at the same moment: this label replaces theirs.
        session.rollback()
        return set_label(
            session=session, run_id=run_id, case_id=case_id, passed=passed, note=note, by=by
        )
    session.refresh(label)
    return label


def delete_label(*, session: Session, run_id: int, case_id: int) -> bool:
    query = select(EvalLabel).where(EvalLabel.run_id == run_id, EvalLabel.case_id == case_id)
    label = session.exec(query).first()
    if label is None:
        return False
    session.delete(label)
    session.commit()
    return True


def result_of(*, session: Session, run_id: int, case_id: int) -> EvalResult | None:
    query = select(EvalResult).where(EvalResult.run_id == run_id, EvalResult.case_id == case_id)
    return session.exec(query).first()


def labelled_rows(
    *, session: Session, run_id: int
) -> list[tuple[EvalLabel, EvalCase, EvalResult | None]]:
    """The run's labels in the cases' order, each with its case and the run's result."""
    query = (
        select(EvalLabel, EvalCase, EvalResult)
        .join(EvalCase, col(EvalCase.id) == EvalLabel.case_id)
        .outerjoin(
            EvalResult,
            (col(EvalResult.run_id) == EvalLabel.run_id)
            & (col(EvalResult.case_id) == EvalLabel.case_id),
        )
        .where(EvalLabel.run_id == run_id)
        .order_by(col(EvalCase.position))
    )
    return [(label, case, result) for label, case, result in session.exec(query).all()]


def get_judge(*, session: Session, prompt: str) -> EvalJudge | None:
    return session.get(EvalJudge, prompt)


def set_threshold(*, session: Session, prompt: str, kappa: float, by: str) -> EvalJudge:
    judge = session.get(EvalJudge, prompt) or EvalJudge(
        prompt=prompt, kappa_threshold=kappa, updated_by=by
    )
    judge.kappa_threshold, judge.updated_by, judge.updated_at = kappa, by, utcnow()
    session.add(judge)
    return judge


def list_calibrations(*, session: Session, prompt: str, limit: int = 100) -> list[EvalCalibration]:
    """The judge's calibrations, newest first."""
    query = (
        select(EvalCalibration)
        .where(EvalCalibration.prompt == prompt)
        .order_by(col(EvalCalibration.id).desc())
        .limit(limit)
    )
    return list(session.exec(query).all())


def verdicts_of(
    *, session: Session, calibration: EvalCalibration, disagreeing: bool
) -> list[tuple[EvalVerdict, EvalCase, str | None]]:
    """The calibration's verdicts in the cases' order (only where judge and people differ,
    with `disagreeing`), each with its case and the answer judged."""
    query = (
        select(EvalVerdict, EvalCase, EvalResult.output)
        .join(EvalCase, col(EvalCase.id) == EvalVerdict.case_id)
        .outerjoin(
            EvalResult,
            (col(EvalResult.run_id) == calibration.run_id)
            & (col(EvalResult.case_id) == EvalVerdict.case_id),
        )
        .where(EvalVerdict.calibration_id == calibration.id)
        .order_by(col(EvalVerdict.position))
    )
    if disagreeing:
        query = query.where(col(EvalVerdict.passed) != col(EvalVerdict.people_passed))
    return [(verdict, case, output) for verdict, case, output in session.exec(query).all()]
