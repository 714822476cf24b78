"""People: local password accounts, and people the identity provider vouches for, keyed on
(issuer, subject) and refreshed at every sign-in. Each has a `key` of their own for good: what
they own is theirs by it, so deleting a person and creating another with the same name gives
the newcomer nothing."""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from hub.core.roles import Role
from hub.core.security import hash_password, verify_password
from hub.models.actor import Actor
from hub.models.service import utcnow
from hub.models.user import User
from hub.models.web_session import WebSession
from hub.services.audit import record_event

__all__ = [
    "DuplicateUserError",
    "GroupRules",
    "authenticate_password",
    "create_user",
    "delete_user",
    "get_user",
    "sign_in_from_claims",
]

# Checked against when a name is unknown, so an unknown name costs as long as a wrong password.
_DUMMY_HASH = hash_password("an account that does not exist")
_USERNAME_CHARS = re.compile(r"[^a-z0-9._-]+")


class DuplicateUserError(ValueError):
    pass


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    display_name: str | None = None,
    team: str = "general",
    role: Role = Role.member,
) -> User:
    if get_user(session=session, username=username) is not None:
        raise DuplicateUserError(f"a user named {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        team=team,
        teams=[team],
        role=role,
    )
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def get_user(*, session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def delete_user(*, session: Session, username: str, actor: Actor | None = None) -> bool:
    """Offboard a person: end their sessions and remove their account; False when there is no
    one by that name. What they own stays owned by their key, which nobody else gets. `actor`
    None is the system (the `switchboard` command)."""
    user = get_user(session=session, username=username)
    if user is None:
        return False
    session.exec(delete(WebSession).where(col(WebSession.user_id) == user.id))
    session.delete(user)
    record_event(
        session=session,
        actor=actor,
        action="user.deleted",
        object_kind="user",
        object_id=user.key,
        details={"username": user.username},
    )
    session.commit()
    return True


def authenticate_password(*, session: Session, username: str, password: str) -> User | None:
    """The local account with this name and password; as slow for an unknown name (or one
    that signs in only through the identity provider) as for a wrong password."""
    user = get_user(session=session, username=username)
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    matches = verify_password(password, stored)
    if user is None or user.password_hash is None or not matches:
        return None
    return user


@dataclass(frozen=True, slots=True)
class GroupRules:
    """What the identity provider's groups mean here (the SWITCHBOARD_OIDC_* settings)."""

    claim: str
    team_prefix: str
    admin_groups: frozenset[str]
    builder_groups: frozenset[str]

    def groups(self, claims: Mapping[str, Any]) -> list[str]:
        value = claims.get(self.claim) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return []
        return [str(group) for group in value if isinstance(group, str | int)]

    def role(self, groups: Iterable[str]) -> Role:
        names = set(groups)
        if names & self.admin_groups:
            return Role.admin
        if names & self.builder_groups:
            return Role.builder
        return Role.member

    def teams(self, groups: Iterable[str]) -> list[str]:
        teams = []
        for group in groups:
            if self.team_prefix and group.startswith(self.team_prefix):
                team = group.removeprefix(self.team_prefix).strip()[:100]
                if team and team not in teams:
                    teams.append(team)
        return sorted(teams)


def _username_base(claims: Mapping[str, Any]) -> str:
    for key in ("preferred_username", "email", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            name = value.strip().lower()
            name = name.split("@", 1)[0] if key == "email" else name
            name = _USERNAME_CHARS.sub("-", name).strip("-.")[:80]
            if name:
                return name
    return "person"


def _free_username(session: Session, base: str) -> str:
    candidate, number = base, 1
    while get_user(session=session, username=candidate) is not None:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def _text(claims: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = claims.get(key)
    return value.strip()[:limit] or None if isinstance(value, str) else None


def sign_in_from_claims(
    *, session: Session, issuer: str, claims: Mapping[str, Any], rules: GroupRules
) -> User:
    """The person the checked ID token is about, created at their first sign-in; their name,
    email, teams and role are refreshed from the token every time."""
    subject = str(claims["sub"])
    user = session.exec(select(User).where(User.issuer == issuer, User.subject == subject)).first()
    groups = rules.groups(claims)
    teams = rules.teams(groups)
    if user is None:
        user = User(
            username=_free_username(session, _username_base(claims)),
            display_name="",
            issuer=issuer,
            subject=subject,
        )
    user.display_name = _text(claims, "name", 200) or user.display_name or user.username
    user.email = _text(claims, "email", 320)
    user.teams = teams
    user.team = teams[0] if teams else "general"
    old_role, user.role = user.role, rules.role(groups)
    user.last_sign_in_at = utcnow()
    session.add(user)
    if user.id is not None and old_role != user.role:
        # The identity provider's groups changed: the hub applies them, so the system acts.
        record_event(
            session=session,
            actor=None,
            action="role.changed",
            object_kind="user",
            object_id=user.key,
            details={"username": user.username, "old": str(old_role), "new": str(user.role)},
        )
    try:
        session.commit()
    except IntegrityError:
        # Two first sign-ins of one person at once: the other one created the row.
        session.rollback()
        found = session.exec(
            select(User).where(User.issuer == issuer, User.subject == subject)
        ).first()
        if found is None:
            raise
        return sign_in_from_claims(session=session, issuer=issuer, claims=claims, rules=rules)
    session.refresh(user)
    return user
