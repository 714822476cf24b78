"""Signed-in sessions on the hub's pages: a random token in a cookie, only its hash stored."""

from datetime import UTC, timedelta

from sqlmodel import Session, col, delete, select

from hub.core.security import hash_token, new_service_token
from hub.models.service import utcnow
from hub.models.user import User
from hub.models.web_session import WebSession

__all__ = ["end_web_session", "start_web_session", "user_for_web_session"]


def start_web_session(*, session: Session, user: User, days: int) -> str:
    assert user.id is not None
    token = new_service_token()
    session.add(
        WebSession(
            token_hash=hash_token(token),
            user_id=user.id,
            expires_at=utcnow() + timedelta(days=days),
        )
    )
    session.commit()
    return token


def user_for_web_session(*, session: Session, token: str) -> User | None:
    row = session.exec(select(WebSession).where(WebSession.token_hash == hash_token(token))).first()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires <= utcnow():
        return None
    return session.get(User, row.user_id)


def end_web_session(*, session: Session, token: str) -> None:
    session.exec(delete(WebSession).where(col(WebSession.token_hash) == hash_token(token)))
    session.commit()
