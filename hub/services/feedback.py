"""Feedback on answers: given and taken back by the person whose conversation holds the answer
(the chat acts for them), read per version by an agent's owner and admins, exported by admins.

The answer must be a message of the person's own conversation in the chat's tables, and what
the request says gave it (model, agent, version, trace) must be what the chat stored with it.
"""

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from hub.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnsuitableError,
)
from hub.models.actor import Actor
from hub.models.agent import Agent
from hub.models.feedback import (
    AgentFeedback,
    Feedback,
    FeedbackComment,
    FeedbackIn,
    VersionFeedback,
)
from hub.models.service import utcnow
from hub.services.agents import get_agent, get_version

__all__ = [
    "COMMENTS_PER_VERSION",
    "agent_feedback",
    "all_feedback",
    "delete_feedback",
    "record_feedback",
]

# The latest comments shown per version of an agent.
COMMENTS_PER_VERSION = 5

# The chat's conversations and messages (Chainlit's tables, made by migration 0002).
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_threads = sa.table("threads", sa.column("id", sa.Text), sa.column("userIdentifier", sa.Text))
_steps = sa.table(
    "steps",
    sa.column("id", sa.Text),
    sa.column("threadId", sa.Text),
    sa.column("type", sa.Text),
    sa.column("createdAt", sa.Text),
    sa.column("metadata", _JSON),
)
# The marker the chat puts in the metadata of a model's or an agent's answer.
_REPLY_MARKER = "switchboard_reply"


def _require_person(actor: Actor) -> None:
    if actor.kind != "user":
        raise PermissionDeniedError(
            "Only people give feedback on answers (through the chat); a service cannot."
        )


def _as_mapping(value: Any) -> dict[str, Any]:
    """Step metadata as stored: a JSON object, or (on SQLite) its text."""
    for _ in range(2):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return {}
    return value if isinstance(value, dict) else {}


class _StoredAnswer(NamedTuple):
    metadata: dict[str, Any]
    # When the chat stored it; None if it kept no time.
    at: datetime | None


def _moment(value: Any) -> datetime | None:
    """A time the chat stored (ISO 8601 text), or None."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _stored_answer(session: Session, actor: Actor, feedback_in: FeedbackIn) -> _StoredAnswer:
    """What the chat stored with the answer, once it is sure the answer is one in the actor's
    own conversation."""
    connection = session.connection()
    owner = connection.execute(
        sa.select(_threads.c.userIdentifier).where(_threads.c.id == feedback_in.conversation_id)
    ).first()
    if owner is None or owner[0] != actor.id:
        raise NotFoundError(f"You have no conversation {feedback_in.conversation_id!r}.")
    step = connection.execute(
        sa.select(_steps.c.type, _steps.c.metadata, _steps.c.createdAt).where(
            _steps.c.id == feedback_in.message_id,
            _steps.c.threadId == feedback_in.conversation_id,
        )
    ).first()
    if step is None:
        raise NotFoundError(f"That conversation has no message {feedback_in.message_id!r}.")
    metadata = _as_mapping(step[1])
    if step[0] != "assistant_message" or not metadata.get(_REPLY_MARKER):
        raise UnsuitableError(
            "That message is not an answer from a model or an agent; rate an answer."
        )
    return _StoredAnswer(metadata, _moment(step[2]) if step[2] else None)


def _given_by(agent: Any, version: Any, trace: Any) -> str:
    if agent is None:
        return "a model, not an agent" + (f", trace {trace}" if trace else "")
    said = f"agent {agent!r} " + (f"v{version}" if version is not None else "(its draft)")
    return said + (f", trace {trace}" if trace else "")


def _check_attribution(feedback_in: FeedbackIn, stored: dict[str, Any]) -> None:
    """What the request says gave the answer must be what the chat stored with it."""
    told = (feedback_in.agent_slug, feedback_in.agent_version, feedback_in.trace_id)
    kept = (stored.get("agent"), stored.get("version"), stored.get("trace"))
    if told != kept:
        raise ConflictError(
            f"The chat stored this answer as given by {_given_by(*kept)}; the request says "
            f"{_given_by(*told)}.",
        )
    models = {stored.get("model"), stored.get("answered_by")} - {None, ""}
    if feedback_in.model and models and feedback_in.model not in models:
        raise ConflictError(
            f"The answer came from {' or '.join(sorted(map(str, models)))}, "
            f"not {feedback_in.model!r}.",
        )


def _agent_of(
    session: Session, feedback_in: FeedbackIn, answered_at: datetime | None
) -> Agent | None:
    """The agent that gave the answer: the one now under its slug, unless that one was made
    after the answer (the agent that gave it was deleted and its slug taken again)."""
    if feedback_in.agent_slug is None:
        return None
    agent = get_agent(session=session, slug=feedback_in.agent_slug)
    if agent is None or (answered_at is not None and answered_at < agent.created_at):
        return None
    return agent


def _model_of(session: Session, feedback_in: FeedbackIn, agent: Agent | None) -> str:
    """The model named, or else the one the agent's version (or draft) runs."""
    if feedback_in.model or agent is None:
        return feedback_in.model
    if feedback_in.agent_version is None:
        return agent.model
    version = get_version(session=session, agent=agent, number=feedback_in.agent_version)
    return version.model if version is not None else ""


def _own(session: Session, actor: Actor, message_id: str) -> Feedback | None:
    query = select(Feedback).where(
        Feedback.person_kind == actor.kind,
        Feedback.person_id == actor.id,
        Feedback.message_id == message_id,
    )
    return session.exec(query).first()


def _write(
    session: Session, actor: Actor, feedback_in: FeedbackIn, model: str, agent: Agent | None
) -> Feedback:
    now = utcnow()
    fields: dict[str, Any] = {
        "person_name": actor.name,
        "conversation_id": feedback_in.conversation_id,
        "value": feedback_in.value,
        "comment": feedback_in.comment,
        "model": model,
        "agent_slug": feedback_in.agent_slug,
        "agent_id": agent.id if agent is not None else None,
        "agent_version": feedback_in.agent_version,
        "trace_id": feedback_in.trace_id,
        "updated_at": now,
    }
    feedback = _own(session, actor, feedback_in.message_id)
    if feedback is None:
        feedback = Feedback(
            person_kind=actor.kind,
            person_id=actor.id,
            message_id=feedback_in.message_id,
            created_at=now,
            **fields,
        )
    else:
        feedback.sqlmodel_update(fields)
    session.add(feedback)
    session.commit()
    session.refresh(feedback)
    return feedback


def record_feedback(*, session: Session, actor: Actor, feedback_in: FeedbackIn) -> Feedback:
    """The actor's feedback on an answer in their conversation; again on the same answer
    replaces it."""
    _require_person(actor)
    stored = _stored_answer(session, actor, feedback_in)
    _check_attribution(feedback_in, stored.metadata)
    agent = _agent_of(session, feedback_in, stored.at)
    model = _model_of(session, feedback_in, agent)
    try:
        return _write(session, actor, feedback_in, model, agent)
    except IntegrityError:
        # The same person rated the same answer twice at once: the other one made the row.
        session.rollback()
        return _write(session, actor, feedback_in, model, agent)


def delete_feedback(*, session: Session, actor: Actor, message_id: str) -> None:
    """Take back the actor's own feedback on a message."""
    _require_person(actor)
    feedback = _own(session, actor, message_id)
    if feedback is None:
        raise NotFoundError(f"You gave no feedback on message {message_id!r}.")
    session.delete(feedback)
    session.commit()


def _order(version: int | None) -> tuple[int, int]:
    return (1, 0) if version is None else (0, -version)


def agent_feedback(
    *, session: Session, agent: Agent, comments: int = COMMENTS_PER_VERSION
) -> AgentFeedback:
    """Ups and downs per version of the agent (the draft's too), with its latest comments."""
    ups = func.sum(sa.case((col(Feedback.value) > 0, 1), else_=0))
    downs = func.sum(sa.case((col(Feedback.value) < 0, 1), else_=0))
    counts = session.exec(
        select(Feedback.agent_version, ups, downs)
        .where(Feedback.agent_id == agent.id)
        .group_by(col(Feedback.agent_version))
    ).all()
    rank = (
        func.row_number()
        .over(
            partition_by=col(Feedback.agent_version),
            order_by=(col(Feedback.updated_at).desc(), col(Feedback.id).desc()),
        )
        .label("rank")
    )
    commented = (
        select(Feedback, rank)
        .where(Feedback.agent_id == agent.id, Feedback.comment != "")
        .subquery()
    )
    latest = session.exec(
        select(aliased(Feedback, commented))
        .where(commented.c.rank <= comments)
        .order_by(commented.c.updated_at.desc(), commented.c.id.desc())
    ).all()
    said: dict[int | None, list[FeedbackComment]] = {}
    for row in latest:
        said.setdefault(row.agent_version, []).append(
            FeedbackComment(
                person_name=row.person_name,
                value=row.value,
                comment=row.comment,
                at=row.updated_at,
                trace_id=row.trace_id,
            )
        )
    versions = [
        VersionFeedback(
            version=version,
            ups=int(up or 0),
            downs=int(down or 0),
            comments=said.get(version, []),
        )
        for version, up, down in counts
    ]
    versions.sort(key=lambda item: _order(item.version))
    return AgentFeedback(slug=agent.slug, versions=versions)


def all_feedback(*, session: Session) -> list[Feedback]:
    """Every feedback, in the order it was last given (the export)."""
    query = select(Feedback).order_by(col(Feedback.updated_at), col(Feedback.id))
    return list(session.exec(query).all())
