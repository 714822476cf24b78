"""Judges calibrated by people: people's labels on a run's rows, and calibrations that measure
how far a judge prompt's version agrees with them.

A judge is a prompt of the prompt library whose messages use some of the variables `input`
(the case's variables as JSON), `answer` and `expected`, and whose answer is JSON
`{"score": 0..1, "reason": "..."}`. People mark rows of a run pass or fail (`EvalLabel`, one per
run and case, the latest wins); a calibration runs one version of the judge over every labelled
row of a run (`EvalVerdict` per row) and keeps the figures of agreement. A judge counts as
calibrated when its latest calibration's kappa is at least the threshold its owners set
(`EvalJudge`).
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.models.service import utcnow

__all__ = [
    "MAX_CALIBRATION_LABELS",
    "CalibrationCreate",
    "CalibrationPublic",
    "ConfusionMatrix",
    "Disagreement",
    "EvalCalibration",
    "EvalJudge",
    "EvalLabel",
    "EvalVerdict",
    "JudgePublic",
    "LabelPublic",
    "LabelSet",
    "ThresholdSet",
]

# A calibration judges every labelled row within its request; past this many labels it is
# refused rather than left to run for minutes.
MAX_CALIBRATION_LABELS = 500


class EvalLabel(SQLModel, table=True):
    """A person's verdict on one row (case) of a run; set again, it replaces the last one."""

    __tablename__ = "eval_label"
    __table_args__ = (UniqueConstraint("run_id", "case_id", name="uq_eval_label_case"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="eval_run.id", index=True, ondelete="CASCADE")
    case_id: int = Field(foreign_key="eval_case.id", ondelete="CASCADE")
    passed: bool
    note: str = Field(default="", max_length=2000)
    labelled_by: str = Field(max_length=100)
    labelled_at: datetime = Field(default_factory=utcnow)


class EvalJudge(SQLModel, table=True):
    """What a judge prompt's owners set: the kappa at which it counts as calibrated."""

    __tablename__ = "eval_judge"

    prompt: str = Field(max_length=63, primary_key=True)
    kappa_threshold: float
    updated_by: str = Field(max_length=100)
    updated_at: datetime = Field(default_factory=utcnow)


class EvalCalibration(SQLModel, table=True):
    """One version of a judge prompt measured against people's labels on one run."""

    __tablename__ = "eval_calibration"

    id: int | None = Field(default=None, primary_key=True)
    prompt: str = Field(max_length=63, index=True)
    version: int
    run_id: int = Field(foreign_key="eval_run.id", index=True, ondelete="CASCADE")
    pass_score: float = 0.5
    labels: int
    # Counts of (judge, people): pass/pass, pass/fail, fail/pass, fail/fail.
    both_pass: int
    judge_pass_people_fail: int
    judge_fail_people_pass: int
    both_fail: int
    accuracy: float | None = None
    kappa: float | None = None
    cost_usd: float = 0.0
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow)


class EvalVerdict(SQLModel, table=True):
    """What the judge made of one labelled row in a calibration, next to people's label."""

    __tablename__ = "eval_verdict"

    id: int | None = Field(default=None, primary_key=True)
    calibration_id: int = Field(foreign_key="eval_calibration.id", index=True, ondelete="CASCADE")
    case_id: int = Field(foreign_key="eval_case.id", ondelete="CASCADE")
    position: int
    passed: bool
    score: float | None = None
    reason: str = Field(default="", max_length=2000)
    people_passed: bool
    note: str = Field(default="", max_length=2000)


# -- API shapes (not tables) -------------------------------------------------------------------


class LabelSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passed: bool
    note: str = PydanticField(default="", max_length=2000)


class LabelPublic(BaseModel):
    case_id: int
    position: int
    passed: bool
    note: str
    labelled_by: str
    labelled_at: datetime


class CalibrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: int = PydanticField(ge=1)
    # The judge prompt's production version when left out.
    version: int | None = PydanticField(default=None, ge=1)
    # The judge's score (0 to 1) that counts as a pass.
    pass_score: float = PydanticField(default=0.5, ge=0, le=1)


class ThresholdSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kappa: float = PydanticField(ge=0, le=1)


class ConfusionMatrix(BaseModel):
    both_pass: int
    judge_pass_people_fail: int
    judge_fail_people_pass: int
    both_fail: int


class Disagreement(BaseModel):
    case_id: int
    position: int
    variables: dict[str, Any]
    expected: str | None
    answer: str | None
    judge_passed: bool
    score: float | None
    reason: str
    people_passed: bool
    note: str


class CalibrationPublic(BaseModel):
    id: int
    prompt: str
    version: int
    run: int
    pass_score: float
    labels: int
    accuracy: float | None
    # Cohen's kappa; None when it is undefined (both sides gave one verdict to every row).
    kappa: float | None
    confusion: ConfusionMatrix
    cost_usd: float
    created_by: str
    created_at: datetime
    # The rows where judge and people differ: on the calibration just made, and on the newest
    # of a judge's calibrations (empty on the others).
    disagreements: list[Disagreement] = PydanticField(default_factory=list)


class JudgePublic(BaseModel):
    prompt: str
    team: str
    kappa_threshold: float | None
    # Its latest calibration's kappa is at least the threshold.
    calibrated: bool
    # Newest first.
    calibrations: list[CalibrationPublic]
