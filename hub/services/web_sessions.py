"""Signed-in sessions, shared by the hub's pages and the chat: a random token in a cookie,
only its hash stored. Admins list and end them."""

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, delete, select

from hub.core.security import hash_token, new_service_token
from hub.models.actor import Actor
from hub.models.service import utcnow
from hub.models.user import User
from hub.models.web_session import WebSession, WebSessionPublic
from hub.services.audit import record_event

__all__ = [
    "end_web_session",
    "end_web_session_by_id",
    "list_web_sessions",
    "start_web_session",
    "user_for_web_session",
]


def start_web_session(*, session: Session, user: User, days: int, method: str) -> str:
    assert user.id is not None
    token = new_service_token()
    session.add(
        WebSession(
            token_hash=hash_token(token),
            user_id=user.id,
            method=method,
            expires_at=utcnow() + timedelta(days=days),
        )
    )
    session.commit()
    return token


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def user_for_web_session(*, session: Session, token: str) -> User | None:
    row = session.exec(select(WebSession).where(WebSession.token_hash == hash_token(token))).first()
    if row is None or _aware(row.expires_at) <= utcnow():
        return None
    return session.get(User, row.user_id)


def end_web_session(*, session: Session, token: str) -> None:
    session.exec(delete(WebSession).where(col(WebSession.token_hash) == hash_token(token)))
    session.commit()


def end_web_session_by_id(*, session: Session, session_id: int, actor: Actor) -> bool:
    """End one session (`actor`, an admin, revoking it); False when there is none with this
    id."""
    row = session.get(WebSession, session_id)
    if row is None:
        return False
    person = session.get(User, row.user_id)
    session.delete(row)
    record_event(
        session=session,
        actor=actor,
        action="session.revoked",
        object_kind="web_session",
        object_id=str(session_id),
        details={
            "username": person.username if person else "",
            "user_key": person.key if person else "",
            "method": row.method,
        },
    )
    session.commit()
    return True


def list_web_sessions(*, session: Session) -> list[WebSessionPublic]:
    """Sessions still valid, newest first."""
    rows = session.exec(
        select(WebSession, User)
        .join(User, col(User.id) == WebSession.user_id)
        .where(WebSession.expires_at > utcnow())
        .order_by(col(WebSession.created_at).desc(), col(WebSession.id).desc())
    )
    return [
        WebSessionPublic(
            id=row.id or 0,
            username=user.username,
            display_name=user.display_name,
            method=row.method,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )
        for row, user in rows
    ]
