"""People who sign in with a local password (SSO comes later and links to the same rows)."""

from sqlmodel import Session, select

from hub.core.security import hash_password, verify_password
from hub.models.user import User

__all__ = ["DuplicateUserError", "authenticate_password", "create_user", "get_user"]


class DuplicateUserError(ValueError):
    pass


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    display_name: str | None = None,
    team: str = "general",
    is_admin: bool = False,
) -> User:
    if get_user(session=session, username=username) is not None:
        raise DuplicateUserError(f"a user named {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        team=team,
        is_admin=is_admin,
    )
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def get_user(*, session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def authenticate_password(*, session: Session, username: str, password: str) -> User | None:
    user = get_user(session=session, username=username)
    if user is None or user.password_hash is None:
        return None
    return user if verify_password(password, user.password_hash) else None
