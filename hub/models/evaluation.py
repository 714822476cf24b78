"""Evaluation: test sets of cases, and runs that score a prompt version (or an agent version)
over one version of a test set, case by case.

A test set belongs to a team and is uploaded as CSV or JSONL; each upload is a new immutable
version of its cases (a case: the variables, an optional expected output, optional tags). A
run answers every case of one test-set version with the target and applies its checks; each
case's result is one row (unique per run and case), so a run that stopped carries on with
the cases that have none, and no case is answered twice.

The tables are named "eval_..." in code: "Test..." names would be collected by pytest.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.models.mcp_server import SLUG_PATTERN
from hub.models.service import utcnow

__all__ = [
    "MAX_CHECKS",
    "MAX_CONCURRENCY",
    "Check",
    "CheckKind",
    "CheckOutcome",
    "CheckSummary",
    "ComparedRow",
    "EvalCase",
    "EvalCasePage",
    "EvalCasePublic",
    "EvalResult",
    "EvalRun",
    "EvalSet",
    "EvalSetCreate",
    "EvalSetListItem",
    "EvalSetPublic",
    "EvalSetVersion",
    "EvalSetVersionCreate",
    "EvalSetVersionPublic",
    "ResultPage",
    "ResultPublic",
    "ResultStatus",
    "RunAggregates",
    "RunComparison",
    "RunCreate",
    "RunEstimate",
    "RunProgress",
    "RunPublic",
    "RunStatus",
    "TagSummary",
    "TargetKind",
]

TargetKind = Literal["prompt", "agent"]


class CheckKind(StrEnum):
    """Deterministic checks of an answer; `judge` asks a catalog model with a rubric."""

    valid_json = "valid_json"  # the answer parses as JSON
    json_schema = "json_schema"  # ... and matches `schema`
    required_fields = "required_fields"  # ... and is an object with every one of `fields`
    tool_call = "tool_call"  # the target called `tool` (server.tool, or the tool's name)
    exact = "exact"  # the answer equals `value`, or the case's expected output
    contains = "contains"  # the answer contains `value`, or the case's expected output
    regex = "regex"  # the answer matches the regular expression `value`
    judge = "judge"  # a catalog model scores the answer by `rubric`


class Check(BaseModel):
    """One check a run applies to every case's answer."""

    model_config = ConfigDict(extra="forbid")

    kind: CheckKind
    # Its name in results; the kind when left out (two checks of a kind need names).
    name: str | None = PydanticField(default=None, max_length=100)
    value: str | None = PydanticField(default=None, max_length=10_000)
    json_schema: dict[str, Any] | None = None
    fields: list[str] | None = PydanticField(default=None, max_length=100)
    tool: str | None = PydanticField(default=None, max_length=200)
    case_sensitive: bool = True
    # For `judge`: the model that judges with its rubric, or a judge prompt of the prompt
    # library (and its version, production when left out: the run stores the one it used);
    # and the score (0 to 1) that passes.
    model: str | None = PydanticField(default=None, max_length=200)
    rubric: str | None = PydanticField(default=None, max_length=20_000)
    judge_prompt: str | None = PydanticField(default=None, min_length=1, max_length=63)
    judge_version: int | None = PydanticField(default=None, ge=1)
    pass_score: float = PydanticField(default=0.5, ge=0, le=1)

    @property
    def label(self) -> str:
        return self.name or self.kind.value

    @model_validator(mode="after")
    def _needs(self) -> "Check":
        needed = {
            CheckKind.json_schema: ("json_schema", self.json_schema),
            CheckKind.required_fields: ("fields", self.fields),
            CheckKind.tool_call: ("tool", self.tool),
            CheckKind.regex: ("value", self.value),
        }
        if self.kind in needed and not needed[self.kind][1]:
            raise ValueError(f"a {self.kind.value} check needs {needed[self.kind][0]!r}")
        if self.kind == CheckKind.judge:
            by_model = self.model is not None or self.rubric is not None
            if by_model == (self.judge_prompt is not None):
                raise ValueError(
                    "a judge check needs either 'model' and 'rubric', or a 'judge_prompt' "
                    "(with an optional 'judge_version'), not both"
                )
            if by_model and not (self.model and self.rubric):
                raise ValueError("a judge check by model needs both 'model' and 'rubric'")
        if self.judge_version is not None and self.judge_prompt is None:
            raise ValueError("'judge_version' goes with a 'judge_prompt'")
        return self


class CheckOutcome(BaseModel):
    """What one check made of one answer."""

    name: str
    passed: bool
    # Why it failed (or, for a judge, its reason); empty when there is nothing to say.
    detail: str = ""
    # A judge's score, 0 to 1.
    score: float | None = None
    # The judge prompt and the version of it that judged, for a check by a judge prompt.
    judge: str | None = None
    judge_version: int | None = None


class EvalSet(SQLModel, table=True):
    __tablename__ = "eval_set"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=63, unique=True, index=True)
    team: str = Field(max_length=100, index=True)
    description: str = Field(default="", max_length=2000)
    latest_version: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = Field(max_length=100)


class EvalSetVersion(SQLModel, table=True):
    __tablename__ = "eval_set_version"
    __table_args__ = (UniqueConstraint("set_id", "number", name="uq_eval_set_version_number"),)

    id: int | None = Field(default=None, primary_key=True)
    set_id: int = Field(foreign_key="eval_set.id", index=True, ondelete="CASCADE")
    number: int
    cases: int
    # The variables the cases give, in the order of the file's columns or first keys.
    variables: list[str] = Field(default_factory=list, sa_type=JSON)
    filename: str = Field(default="", max_length=255)
    note: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = Field(max_length=100)


class EvalCase(SQLModel, table=True):
    __tablename__ = "eval_case"
    __table_args__ = (UniqueConstraint("version_id", "position", name="uq_eval_case_position"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="eval_set_version.id", index=True, ondelete="CASCADE")
    # 1, 2, ...: the case's place in the file (a CSV's header is not counted).
    position: int
    variables: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    expected: str | None = None
    tags: list[str] = Field(default_factory=list, sa_type=JSON)


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    finished = "finished"
    cancelled = "cancelled"
    failed = "failed"


class EvalRun(SQLModel, table=True):
    __tablename__ = "eval_run"

    id: int | None = Field(default=None, primary_key=True)
    set_id: int = Field(foreign_key="eval_set.id", index=True, ondelete="CASCADE")
    set_version: int
    target_kind: str = Field(max_length=20)  # a TargetKind
    target: str = Field(max_length=63)  # the prompt's name or the agent's slug
    target_version: int
    checks: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)  # Checks
    concurrency: int = 4
    status: str = Field(default=RunStatus.queued.value, max_length=20, index=True)
    cases: int = 0
    # What the catalog's prices say the run will cost, shown before it starts.
    estimated_cost_usd: float = 0.0
    # Why it failed or stopped, for its page.
    message: str = Field(default="", max_length=2000)
    team: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = Field(max_length=100)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ResultStatus(StrEnum):
    # Sent to the target; the row is there so that no other runner (another replica, or
    # this one after a restart) sends the case again.
    started = "started"
    done = "done"
    # The target failed on it (after the gateway's retries); the checks did not run.
    error = "error"


class EvalResult(SQLModel, table=True):
    __tablename__ = "eval_result"
    __table_args__ = (UniqueConstraint("run_id", "case_id", name="uq_eval_result_case"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="eval_run.id", index=True, ondelete="CASCADE")
    case_id: int = Field(foreign_key="eval_case.id", ondelete="CASCADE")
    position: int
    status: str = Field(default=ResultStatus.started.value, max_length=20)
    output: str | None = None
    # Every check's CheckOutcome; passed is true when all of them passed.
    outcomes: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    passed: bool | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float | None = None
    error: str | None = Field(default=None, max_length=2000)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


# The API's shapes of test sets (not tables).

# A test set's page is /evaluation/sets/{name}; "new" is its upload form.
_RESERVED_SET_NAMES = frozenset({"new"})


class EvalSetCreate(SQLModel):
    """A new test set; its first version is the uploaded file."""

    name: str = Field(
        description="lower-case letters, digits and dashes", schema_extra={"pattern": SLUG_PATTERN}
    )
    description: str = Field(default="", max_length=2000)
    # One of the caller's teams; their first team when left out.
    team: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if name in _RESERVED_SET_NAMES:
            raise ValueError(f"{name!r} is taken by the hub's pages; pick another name")
        return name


class EvalSetVersionCreate(SQLModel):
    note: str = Field(default="", max_length=2000)


class EvalSetVersionPublic(SQLModel):
    number: int
    cases: int
    variables: list[str]
    filename: str
    note: str
    created_at: datetime
    created_by: str


class EvalSetPublic(SQLModel):
    name: str
    team: str
    description: str
    latest_version: int
    created_at: datetime
    created_by: str
    # Newest first.
    versions: list[EvalSetVersionPublic] = Field(default_factory=list)


class EvalSetListItem(SQLModel):
    name: str
    team: str
    description: str
    latest_version: int
    # The latest version's.
    cases: int
    created_at: datetime


class EvalCasePublic(SQLModel):
    position: int
    variables: dict[str, Any]
    expected: str | None
    tags: list[str]


class EvalCasePage(SQLModel):
    """Some of a version's cases, by position: `offset` skipped, at most `limit`."""

    name: str
    version: int
    total: int
    offset: int
    limit: int
    cases: list[EvalCasePublic]


# -- API shapes of runs (not tables) ---------------------------------------------------------

MAX_CHECKS = 20
MAX_CONCURRENCY = 16


class RunCreate(BaseModel):
    """A run of a prompt version or of an agent version (name one of `prompt` and `agent`)
    over a test-set version; also the body of an estimate."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    test_set: str = PydanticField(alias="set", min_length=1, max_length=63)
    # The set's latest version when left out.
    set_version: int | None = PydanticField(default=None, ge=1)
    prompt: str | None = PydanticField(default=None, min_length=1, max_length=63)
    # The prompt's production version, or the agent's live one, when left out.
    version: int | None = PydanticField(default=None, ge=1)
    # The agent's slug; each case's `message` (or `input`, or only) variable is its input.
    agent: str | None = PydanticField(default=None, min_length=1, max_length=63)
    checks: list[Check] = PydanticField(default_factory=list, max_length=MAX_CHECKS)
    concurrency: int = PydanticField(default=4, ge=1, le=MAX_CONCURRENCY)


class RunEstimate(BaseModel):
    cases: int
    # Cases whose variables do not fit the version: they end as errors, at no cost.
    unfit_cases: int
    target_calls: int
    judge_calls: int
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float
    # How the figures were made, in words.
    basis: str


class RunProgress(BaseModel):
    done: int
    errors: int
    in_flight: int
    total: int


class CheckSummary(BaseModel):
    name: str
    passed: int
    failed: int
    pass_rate: float | None


class TagSummary(BaseModel):
    tag: str
    cases: int
    passed: int
    pass_rate: float | None


class RunAggregates(BaseModel):
    """Figures over the results so far: a case passes when its answer passed every check; an
    error counts as not passed."""

    passed: int
    failed: int
    errors: int
    pass_rate: float | None
    checks: list[CheckSummary]
    tags: list[TagSummary]
    # The target's and the judges' calls together.
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class RunPublic(BaseModel):
    id: int
    set: str
    set_version: int
    target_kind: str
    target: str
    target_version: int
    checks: list[Check]
    concurrency: int
    status: RunStatus
    cases: int
    estimated_cost_usd: float
    message: str
    team: str
    created_at: datetime
    created_by: str
    started_at: datetime | None
    finished_at: datetime | None
    progress: RunProgress
    # On one run's page; left out of lists.
    aggregates: RunAggregates | None = None


class ResultPublic(BaseModel):
    case_id: int
    position: int
    variables: dict[str, Any]
    expected: str | None
    tags: list[str]
    status: ResultStatus
    output: str | None
    outcomes: list[CheckOutcome]
    passed: bool | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float | None
    error: str | None


class ResultPage(BaseModel):
    total: int
    offset: int
    limit: int
    results: list[ResultPublic]


class ComparedRow(BaseModel):
    case_id: int
    position: int
    variables: dict[str, Any]
    before: ResultPublic
    after: ResultPublic


class RunComparison(BaseModel):
    """Two runs of one test-set version, case by case: `better` passed in `after` and not in
    `before` (an error counts as not passed), `worse` the other way round."""

    before: int
    after: int
    better: list[ComparedRow]
    worse: list[ComparedRow]
    unchanged_passed: int
    unchanged_failed: int
    # Cases without a finished result in one of the runs.
    missing: int
