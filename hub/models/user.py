"""A person who signs in: through the company's identity provider (OpenID Connect), keyed on
(issuer, subject), or with a local password in development."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.core.roles import Role
from hub.models.service import utcnow

__all__ = ["User", "UserPublic", "new_user_key"]


def new_user_key() -> str:
    return uuid.uuid4().hex


class User(SQLModel, table=True):
    __tablename__ = "hub_user"
    __table_args__ = (sa.UniqueConstraint("issuer", "subject", name="uq_hub_user_identity"),)

    id: int | None = Field(default=None, primary_key=True)
    # Who the person is for good: what they own is theirs by this key, never by their name
    # (a name can be taken again once they are deleted) nor by `id` (SQLite reuses it).
    key: str = Field(default_factory=new_user_key, max_length=32, unique=True, index=True)
    username: str = Field(max_length=100, unique=True, index=True)
    display_name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    password_hash: str | None = Field(default=None, max_length=200)
    # Who vouches for the person: the identity provider's issuer URL and its subject; both
    # empty for a local password account.
    issuer: str | None = Field(default=None, max_length=500)
    subject: str | None = Field(default=None, max_length=255)
    team: str = Field(default="general", max_length=100)
    teams: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    role: Role = Field(default=Role.member, sa_column=sa.Column(sa.String(20), nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    last_sign_in_at: datetime | None = None


class UserPublic(SQLModel):
    id: int
    key: str
    username: str
    display_name: str
    email: str | None
    team: str
    teams: list[str]
    role: Role
