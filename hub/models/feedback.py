"""Feedback on an answer in the chat: thumbs up or down and a comment, from the person whose
conversation it is, with what gave the answer (the model, or the agent, its version and the
run's trace). A person has one feedback per message; giving it again replaces it."""

from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, field_validator, model_validator
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from hub.api.contract import MAX_COMMENT
from hub.models.mcp_server import SLUG_PATTERN
from hub.models.service import utcnow

__all__ = [
    "AgentFeedback",
    "Feedback",
    "FeedbackComment",
    "FeedbackIn",
    "FeedbackPublic",
    "VersionFeedback",
]


class FeedbackIn(BaseModel):
    """What the chat sends when a person rates an answer (Chainlit's 1 is 1, its 0 is -1)."""

    conversation_id: str = PydanticField(min_length=1, max_length=64)
    message_id: str = PydanticField(min_length=1, max_length=64)
    value: Literal[1, -1] = PydanticField(description="1 for thumbs up, -1 for thumbs down")
    comment: str = PydanticField(default="", max_length=MAX_COMMENT)
    # The model that answered (a fallback's name when one answered in place of the model).
    model: str = PydanticField(default="", max_length=200)
    agent_slug: str | None = PydanticField(default=None, pattern=SLUG_PATTERN)
    # None for an owner's draft.
    agent_version: int | None = PydanticField(default=None, ge=1)
    # The agent run's trace (a UUID).
    trace_id: str | None = PydanticField(default=None, pattern=r"^[A-Za-z0-9-]{1,36}$")

    @field_validator("comment")
    @classmethod
    def _trimmed(cls, comment: str) -> str:
        return comment.strip()

    @model_validator(mode="after")
    def _answered_by_someone(self) -> "FeedbackIn":
        if not self.model.strip() and self.agent_slug is None:
            raise ValueError("say which model or agent gave the answer (model or agent_slug)")
        if self.agent_slug is None and self.agent_version is not None:
            raise ValueError("agent_version belongs to an agent's answer (agent_slug)")
        return self


class Feedback(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("person_kind", "person_id", "message_id", name="uq_feedback_message"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Who gave it, as (kind, id); the name is for display only.
    person_kind: str = Field(max_length=20)
    person_id: str = Field(max_length=64, index=True)
    person_name: str = Field(max_length=100)
    conversation_id: str = Field(max_length=64, index=True)
    message_id: str = Field(max_length=64)
    value: int
    comment: str = Field(default="", max_length=MAX_COMMENT)
    model: str = Field(default="", max_length=200)
    agent_slug: str | None = Field(default=None, max_length=63, index=True)
    # The agent that gave the answer: a slug freed by deleting its agent may name a new one,
    # which must not inherit the old one's feedback. None once that agent is deleted.
    agent_id: int | None = Field(
        default=None, foreign_key="agent.id", ondelete="SET NULL", index=True
    )
    agent_version: int | None = None
    trace_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class FeedbackPublic(SQLModel):
    id: int
    person_name: str
    conversation_id: str
    message_id: str
    value: int
    comment: str
    model: str
    agent_slug: str | None
    agent_version: int | None
    trace_id: str | None
    created_at: datetime
    updated_at: datetime


class FeedbackComment(SQLModel):
    person_name: str
    value: int
    comment: str
    at: datetime
    trace_id: str | None


class VersionFeedback(SQLModel):
    # None for answers of the owner's draft.
    version: int | None
    ups: int
    downs: int
    # The latest comments, newest first.
    comments: list[FeedbackComment]


class AgentFeedback(SQLModel):
    slug: str
    # Newest version first, the draft last.
    versions: list[VersionFeedback]
