"""Live judges' bindings and their verdicts on sampled calls, in the database."""

from datetime import datetime, timedelta

from sqlalchemy import case
from sqlmodel import Session, col, func, select, update

from hub.models.live_judge import LiveFigures, LiveJudge, LiveScore
from hub.models.prompt import Prompt

__all__ = [
    "WINDOWS",
    "add_score",
    "all_bindings",
    "delete_binding",
    "figures",
    "get_binding",
    "latest_scores",
    "set_binding",
    "take_cap",
]

# The windows the figures cover, by name.
WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


def get_binding(*, session: Session, prompt: str) -> LiveJudge | None:
    return session.get(LiveJudge, prompt)


def set_binding(*, session: Session, binding: LiveJudge) -> LiveJudge:
    """Bind the judge; the day's count carries over when the prompt had one already."""
    found = session.get(LiveJudge, binding.prompt, with_for_update=True)
    if found is not None:
        binding.day, binding.judged_on_day = found.day, found.judged_on_day
        session.delete(found)
        session.flush()
    session.add(binding)
    session.commit()
    session.refresh(binding)
    return binding


def delete_binding(*, session: Session, prompt: str) -> bool:
    found = session.get(LiveJudge, prompt)
    if found is None:
        return False
    session.delete(found)
    session.commit()
    return True


def all_bindings(*, session: Session) -> list[tuple[LiveJudge, str]]:
    """Every binding with its prompt's team."""
    query = select(LiveJudge, Prompt.team).join(Prompt, col(Prompt.name) == LiveJudge.prompt)
    return [(binding, team) for binding, team in session.exec(query).all()]


def take_cap(*, session: Session, prompt: str, judge_prompt: str, day: str) -> bool:
    """Count one more judged call on `day` (a UTC date), if the prompt is still bound to
    `judge_prompt` and the day's cap is not reached; one statement, so it holds across hub
    processes."""
    taken = session.exec(
        update(LiveJudge)
        .where(
            col(LiveJudge.prompt) == prompt,
            col(LiveJudge.judge_prompt) == judge_prompt,
            (col(LiveJudge.day) != day) | (col(LiveJudge.judged_on_day) < col(LiveJudge.daily_cap)),
        )
        .values(
            judged_on_day=case(
                (col(LiveJudge.day) == day, col(LiveJudge.judged_on_day) + 1), else_=1
            ),
            day=day,
        )
    )
    session.commit()
    return bool(taken.rowcount)


def add_score(*, session: Session, score: LiveScore) -> None:
    session.add(score)
    session.commit()


def figures(*, session: Session, prompt: str, now: datetime) -> list[LiveFigures]:
    """Per version (newest first) and window: calls judged with a score, passed, and without
    a verdict."""
    found: list[LiveFigures] = []
    for window, length in WINDOWS.items():
        rows = session.exec(
            select(
                LiveScore.version,
                func.count(col(LiveScore.score)),
                func.count(case((col(LiveScore.passed), 1))),
                func.count(),
            )
            .where(LiveScore.prompt == prompt, col(LiveScore.judged_at) >= now - length)
            .group_by(col(LiveScore.version))
        ).all()
        for version, judged, passed, calls in rows:
            rate = passed / judged if judged else None
            found.append(
                LiveFigures(
                    version=version,
                    window=window,
                    judged=judged,
                    passed=passed,
                    pass_rate=rate,
                    no_verdict=calls - judged,
                )
            )
    found.sort(key=lambda f: (-f.version, list(WINDOWS).index(f.window)))
    return found


def latest_scores(*, session: Session, prompt: str, limit: int) -> list[LiveScore]:
    query = (
        select(LiveScore)
        .where(LiveScore.prompt == prompt)
        .order_by(col(LiveScore.judged_at).desc(), col(LiveScore.id).desc())
        .limit(limit)
    )
    return list(session.exec(query).all())
