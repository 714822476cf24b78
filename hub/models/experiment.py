"""Experiments: two versions of a prompt split its live traffic by a unit key the caller sends.

Every call in an experiment is answered by one version (its unit's arm) and, in the background,
by the other one too; the call is an exposure when the two answers differ. A service reports an
outcome per unit, and the experiment compares the arms over every unit (diluted) and over the
exposed units only (post-exposure).
"""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.models.mcp_server import SLUG_PATTERN
from hub.models.service import utcnow

__all__ = [
    "MAX_UNIT_CHARS",
    "Analysis",
    "ArmFigures",
    "CallPage",
    "Experiment",
    "ExperimentCall",
    "ExperimentCallPublic",
    "ExperimentCreate",
    "ExperimentOutcome",
    "ExperimentPublic",
    "ExperimentStatus",
    "OutcomeIn",
    "OutcomePublic",
    "ShadowStatus",
]

MAX_UNIT_CHARS = 200
# What an answer keeps of its text (the comparison uses the hash of the whole text).
SHORT_TEXT_CHARS = 200


class ExperimentStatus(StrEnum):
    running = "running"
    stopped = "stopped"


class ShadowStatus(StrEnum):
    """The answer of the arm not served: asked for, in, failed, or not asked (over budget)."""

    pending = "pending"
    answered = "answered"
    failed = "failed"
    over_budget = "over_budget"


class ExperimentCreate(SQLModel):
    prompt: str = Field(schema_extra={"pattern": SLUG_PATTERN}, max_length=63)
    # Arm "a" is the control, arm "b" the version tried.
    version_a: int = Field(ge=1)
    version_b: int = Field(ge=1)
    # The share of units in arm b.
    split: float = Field(default=0.5, gt=0, lt=1)
    # The most answers of the arm not served that the experiment may ask for.
    budget: int = Field(default=1000, ge=0, le=1_000_000)
    # "exact": two answers differ when their trimmed texts differ; "judge": when they do and
    # `judge_model` (a catalog model) does not answer that they say the same.
    differ: Literal["exact", "judge"] = "exact"
    judge_model: str | None = Field(default=None, min_length=1, max_length=200)


class Experiment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True, ondelete="CASCADE")
    prompt: str = Field(max_length=63, index=True)
    team: str = Field(max_length=100)
    version_a: int
    version_b: int
    split: float = 0.5
    # "exact" or "judge" (ExperimentCreate).
    differ: str = Field(default="exact", max_length=20)
    judge_model: str | None = Field(default=None, max_length=200)
    budget: int
    # Answers of the arm not served asked for so far (never more than `budget`).
    shadow_calls: int = 0
    status: str = Field(default=ExperimentStatus.running.value, max_length=20, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = Field(max_length=100)
    stopped_at: datetime | None = None
    stopped_by: str | None = Field(default=None, max_length=100)


class ExperimentCall(SQLModel, table=True):
    """One call in an experiment: the arm served, both answers (hash and start), and whether
    they differ (None until the other arm's answer is in, or when it never comes)."""

    __tablename__ = "experiment_call"

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True, ondelete="CASCADE")
    unit: str = Field(max_length=MAX_UNIT_CHARS)
    arm: str = Field(max_length=1)
    hash_a: str | None = Field(default=None, max_length=64)
    hash_b: str | None = Field(default=None, max_length=64)
    text_a: str | None = Field(default=None, max_length=SHORT_TEXT_CHARS)
    text_b: str | None = Field(default=None, max_length=SHORT_TEXT_CHARS)
    shadow: str = Field(default=ShadowStatus.pending.value, max_length=20)
    differs: bool | None = None
    made_at: datetime = Field(default_factory=utcnow)


class ExperimentOutcome(SQLModel, table=True):
    """A unit's outcome; a later report replaces an earlier one."""

    __tablename__ = "experiment_outcome"
    __table_args__ = (UniqueConstraint("experiment_id", "unit", name="uq_experiment_outcome_unit"),)

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True, ondelete="CASCADE")
    unit: str = Field(max_length=MAX_UNIT_CHARS)
    value: float
    reported_by: str = Field(max_length=100)
    reported_at: datetime = Field(default_factory=utcnow)


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: str = PydanticField(min_length=1, max_length=MAX_UNIT_CHARS)
    # 0 or 1 for a conversion, or any number (a revenue, a rating).
    value: float = PydanticField(allow_inf_nan=False)


class OutcomePublic(SQLModel):
    unit: str
    value: float
    reported_by: str
    reported_at: datetime


class ArmFigures(SQLModel):
    units: int
    # Mean of the units' outcomes; a unit with no outcome reported counts 0.
    outcome_rate: float | None


class Analysis(SQLModel):
    a: ArmFigures
    b: ArmFigures
    # b − a, with its 95% confidence interval (None with fewer than two units in an arm).
    difference: float | None
    ci_low: float | None
    ci_high: float | None


class ExperimentCallPublic(SQLModel):
    unit: str
    arm: str
    text_a: str | None
    text_b: str | None
    shadow: str
    differs: bool | None
    made_at: datetime


class CallPage(SQLModel):
    total: int
    calls: list[ExperimentCallPublic]


class ExperimentPublic(SQLModel):
    id: int
    prompt: str
    team: str
    version_a: int
    version_b: int
    split: float
    differ: str
    judge_model: str | None
    budget: int
    shadow_calls: int
    status: str
    created_at: datetime
    created_by: str
    stopped_at: datetime | None
    stopped_by: str | None
    # Calls recorded, those whose answers differ, and those whose other answer is not in.
    calls: int = 0
    exposures: int = 0
    pending: int = 0
    outcomes: int = 0
    diluted: Analysis | None = None
    post_exposure: Analysis | None = None
    # Units the diluted analysis would need on top of its own for the post-exposure
    # analysis's interval width: n × (width_diluted / width_post)² − n, rounded up.
    extra_units: int | None = None
