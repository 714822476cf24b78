"""Feedback on answers: the chat gives and takes it back for its person; an agent's owner and
admins read it per version (the admins' export is `/feedback.csv`, hub/web/feedback_pages.py).
"""

from fastapi import APIRouter, Response

from hub.api.deps import CurrentActor, SessionDep
from hub.core.errors import NotFoundError, PermissionDeniedError
from hub.models.feedback import AgentFeedback, FeedbackIn, FeedbackPublic
from hub.services.agents import can_edit, can_read, get_agent
from hub.services.feedback import agent_feedback, delete_feedback, record_feedback

__all__ = ["router"]

router = APIRouter(tags=["feedback"])


@router.put("/api/feedback", response_model=FeedbackPublic)
def give(feedback_in: FeedbackIn, actor: CurrentActor, session: SessionDep) -> FeedbackPublic:
    """The caller's thumbs up (1) or down (-1) and comment on an answer in their own
    conversation (the chat app, for its person); again on the same message replaces it."""
    feedback = record_feedback(session=session, actor=actor, feedback_in=feedback_in)
    return FeedbackPublic.model_validate(feedback, from_attributes=True)


@router.delete("/api/feedback/{message_id}", status_code=204)
def take_back(message_id: str, actor: CurrentActor, session: SessionDep) -> Response:
    """Remove the caller's own feedback on a message."""
    delete_feedback(session=session, actor=actor, message_id=message_id)
    return Response(status_code=204)


@router.get("/api/agents/{slug}/feedback", response_model=AgentFeedback)
def for_agent(slug: str, actor: CurrentActor, session: SessionDep) -> AgentFeedback:
    """Thumbs up and down per version, with the latest comments (its owner and admins)."""
    agent = get_agent(session=session, slug=slug)
    if agent is None or not can_read(agent, actor):
        raise NotFoundError(f"No agent {slug!r} exists, or it is not shared with you.")
    if not can_edit(agent, actor):
        raise PermissionDeniedError(
            f"Only {agent.owner!r} (its owner) or an admin sees the feedback on {slug!r}."
        )
    return agent_feedback(session=session, agent=agent)
