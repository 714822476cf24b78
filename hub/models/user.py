"""A person who signs in to chat. Local password sign-in for now; SSO links here later."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from hub.models.service import utcnow

__all__ = ["PasswordSignIn", "User", "UserPublic"]


class User(SQLModel, table=True):
    __tablename__ = "hub_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=100, unique=True, index=True)
    display_name: str = Field(max_length=200)
    password_hash: str | None = Field(default=None, max_length=200)
    team: str = Field(default="general", max_length=100)
    is_admin: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class UserPublic(SQLModel):
    id: int
    username: str
    display_name: str
    team: str
    is_admin: bool


class PasswordSignIn(SQLModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)
