"""A person's signed-in session on the hub's pages and the chat (a cookie holds the token)."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from hub.models.service import utcnow

__all__ = ["WebSession", "WebSessionPublic"]


class WebSession(SQLModel, table=True):
    __tablename__ = "web_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="hub_user.id", index=True, ondelete="CASCADE")
    # How the person signed in: "oidc" (the identity provider) or "password".
    method: str = Field(default="password", max_length=20)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class WebSessionPublic(SQLModel):
    id: int
    username: str
    display_name: str
    method: str
    created_at: datetime
    expires_at: datetime
