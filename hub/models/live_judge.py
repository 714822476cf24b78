"""A calibrated judge scoring a sample of a prompt's live traffic.

A prompt's owners bind a judge prompt's version (the one a calibration measured) to it with a
share of its calls by name to judge and a daily cap (`LiveJudge`); each sampled call's answer
is judged after it was served, and the verdict kept (`LiveScore`). The cap is counted in the
binding's row (`day`, `judged_on_day`), so it holds across hub processes.
"""

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from hub.models.service import utcnow

__all__ = [
    "DEFAULT_DAILY_CAP",
    "MAX_DAILY_CAP",
    "SHORT_ANSWER_CHARS",
    "LiveFigures",
    "LiveJudge",
    "LiveJudgePublic",
    "LiveJudgeSet",
    "LiveScore",
    "LiveScorePublic",
    "LiveScoresPublic",
    "ProcessCounts",
]

DEFAULT_DAILY_CAP = 1000
MAX_DAILY_CAP = 1_000_000
# The part of a judged answer that is kept to show next to its verdict.
SHORT_ANSWER_CHARS = 1000


class LiveJudge(SQLModel, table=True):
    """The judge of a prompt's live calls, with the share sampled and the cap per UTC day."""

    __tablename__ = "live_judge"

    prompt: str = Field(max_length=63, primary_key=True)
    judge_prompt: str = Field(max_length=63)
    judge_version: int
    # The calibration's score that counts as a pass.
    pass_score: float
    share: float
    daily_cap: int
    # The UTC day (YYYY-MM-DD) `judged_on_day` counts.
    day: str = Field(default="", max_length=10)
    judged_on_day: int = 0
    updated_by: str = Field(max_length=100)
    updated_at: datetime = Field(default_factory=utcnow)


class LiveScore(SQLModel, table=True):
    """The judge's verdict on one sampled call; no score when it gave none."""

    __tablename__ = "live_score"
    __table_args__ = (Index("ix_live_score_prompt_judged_at", "prompt", "judged_at"),)

    id: int | None = Field(default=None, primary_key=True)
    prompt: str = Field(max_length=63)
    version: int
    judge_prompt: str = Field(max_length=63)
    judge_version: int
    score: float | None = None
    passed: bool
    reason: str = Field(default="", max_length=2000)
    answer: str = Field(default="", max_length=SHORT_ANSWER_CHARS)
    cost_usd: float = 0.0
    judged_at: datetime = Field(default_factory=utcnow)


# -- API shapes (not tables) -------------------------------------------------------------------


class LiveJudgeSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    judge: str = PydanticField(min_length=1, max_length=63)
    # The version the judge's latest calibration measured when left out.
    version: int | None = PydanticField(default=None, ge=1)
    share: float = PydanticField(gt=0, le=1)
    daily_cap: int = PydanticField(default=DEFAULT_DAILY_CAP, ge=1, le=MAX_DAILY_CAP)


class LiveJudgePublic(BaseModel):
    judge: str
    version: int
    pass_score: float
    share: float
    daily_cap: int
    judged_today: int
    updated_by: str
    updated_at: datetime


class LiveFigures(BaseModel):
    """One version's verdicts over a window: `judged` have a score, `no_verdict` do not."""

    version: int
    window: str
    judged: int
    passed: int
    # None when nothing was judged.
    pass_rate: float | None
    no_verdict: int


class LiveScorePublic(BaseModel):
    id: int
    version: int
    judge: str
    judge_version: int
    score: float | None
    passed: bool
    reason: str
    answer: str
    cost_usd: float
    judged_at: datetime


class ProcessCounts(BaseModel):
    """What the hub process that answered has done with sampled calls since it started."""

    queued: int
    # The queue was full.
    dropped: int
    # The day's cap was reached.
    over_cap: int


class LiveScoresPublic(BaseModel):
    prompt: str
    team: str
    # None when no judge scores the prompt's calls.
    binding: LiveJudgePublic | None
    # Per version, newest first, over the last 24 hours and 7 days.
    figures: list[LiveFigures]
    # Newest first.
    latest: list[LiveScorePublic]
    this_process: ProcessCounts
