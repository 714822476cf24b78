"""The regression gate: a prompt (or, later, an agent) bound to a test set and its checks, so
that a new version becomes production only when it scores no worse than production's version.

`EvalGate` is the binding, one per target. Moving a gated prompt's production to a version that
was never production makes an `EvalGateCheck` with two runs over the set's latest version, one
of the candidate and one of production's version, with the same checks. Once both are over the
check is decided: passed (production moves), or refused with the rows that got worse; an admin
may override a refused (or failed) check, and production moves then.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.models.evaluation import MAX_CHECKS, Check, RunProgress
from hub.models.service import utcnow

__all__ = [
    "EvalGate",
    "EvalGateCheck",
    "GateCheckPublic",
    "GateOverride",
    "GatePublic",
    "GateSet",
    "GateStatus",
]


class EvalGate(SQLModel, table=True):
    __tablename__ = "eval_gate"
    __table_args__ = (UniqueConstraint("target_kind", "target", name="uq_eval_gate_target"),)

    id: int | None = Field(default=None, primary_key=True)
    target_kind: str = Field(max_length=20)  # a TargetKind
    target: str = Field(max_length=63)  # the prompt's name or the agent's slug
    # Each check runs over the set's latest version at that time.
    set_id: int = Field(foreign_key="eval_set.id", index=True, ondelete="CASCADE")
    checks: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)  # Checks
    # The share of cases (0 to 1) by which the candidate may score below production.
    margin: float = 0.0
    set_by: str = Field(max_length=100)
    set_at: datetime = Field(default_factory=utcnow)


class GateStatus(StrEnum):
    running = "running"
    passed = "passed"
    refused = "refused"
    overridden = "overridden"
    # A run was cancelled or failed: nothing was measured.
    failed = "failed"


class EvalGateCheck(SQLModel, table=True):
    __tablename__ = "eval_gate_check"

    id: int | None = Field(default=None, primary_key=True)
    target_kind: str = Field(max_length=20)
    target: str = Field(max_length=63, index=True)
    candidate_version: int
    # Production's version when the check was asked for.
    baseline_version: int
    set_id: int = Field(foreign_key="eval_set.id", ondelete="CASCADE")
    set_version: int
    candidate_run_id: int = Field(foreign_key="eval_run.id", ondelete="CASCADE")
    baseline_run_id: int = Field(foreign_key="eval_run.id", ondelete="CASCADE")
    margin: float
    status: str = Field(default=GateStatus.running.value, max_length=20, index=True)
    cases: int = 0
    # Share of the cases that passed every check (an error counts as not passed).
    candidate_score: float | None = None
    baseline_score: float | None = None
    # Positions of the cases that passed on production's version and not on the candidate.
    worse: list[int] = Field(default_factory=list, sa_type=JSON)
    # The verdict in words, or why there is none.
    message: str = Field(default="", max_length=2000)
    team: str = Field(max_length=100)
    # Who asked for the change of production: it is made in their name when the check passes.
    requested_by_kind: str = Field(max_length=20)
    requested_by_id: str = Field(max_length=64)
    requested_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    # The admin who overrode it (empty when the hub decided), and when it was decided.
    decided_by: str = Field(default="", max_length=100)
    decided_at: datetime | None = None
    override_reason: str = Field(default="", max_length=2000)


# -- API shapes (not tables) -------------------------------------------------------------------


class GateSet(BaseModel):
    """The body that binds a gate (or changes it)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    test_set: str = PydanticField(alias="set", min_length=1, max_length=63)
    checks: list[Check] = PydanticField(min_length=1, max_length=MAX_CHECKS)
    margin: float = PydanticField(default=0.0, ge=0, le=1)


class GatePublic(BaseModel):
    target_kind: str
    target: str
    set: str
    checks: list[Check]
    margin: float
    set_by: str
    set_at: datetime


class GateOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = PydanticField(max_length=2000)

    @field_validator("reason")
    @classmethod
    def _said(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("say why production should move despite the gate")
        return reason.strip()


class GateCheckPublic(BaseModel):
    id: int
    target_kind: str
    target: str
    candidate_version: int
    baseline_version: int
    set: str
    set_version: int
    candidate_run: int
    baseline_run: int
    margin: float
    status: GateStatus
    cases: int
    candidate_score: float | None
    baseline_score: float | None
    worse: list[int]
    message: str
    requested_by: str
    created_at: datetime
    decided_by: str
    decided_at: datetime | None
    override_reason: str
    # How far each run has got.
    candidate_progress: RunProgress
    baseline_progress: RunProgress
