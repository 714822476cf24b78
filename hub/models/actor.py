"""Who is asking: a person signed in to the hub's pages, or a service with its token."""

from dataclasses import dataclass
from typing import Literal

from hub.core.roles import Permission, Role, allows

__all__ = ["Actor", "PermissionDeniedError"]

_WHAT = {
    Permission.chat: "chatting",
    Permission.build: "making agents and registering MCP servers (the builder role)",
    Permission.administer: "administering the platform (the admin role)",
}


class PermissionDeniedError(Exception):
    """The actor's role does not allow what they asked; `message` says which role does."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Actor:
    kind: Literal["user", "service"]
    name: str
    team: str
    role: Role = Role.member
    # Every team the actor belongs to; `team` is the first, used where one is needed.
    teams: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin

    def may(self, permission: Permission) -> bool:
        return allows(self.role, permission)

    def require(self, permission: Permission) -> None:
        """The one place a role is checked; raises `PermissionDeniedError` (a 403)."""
        if not self.may(permission):
            raise PermissionDeniedError(
                f"{self.name!r} is a {self.role.value}; {_WHAT[permission]} needs a role that "
                "allows it. Ask an admin, or your identity provider's admin for the group."
            )

    def in_team(self, team: str) -> bool:
        return team == self.team or team in self.teams

    def can_manage(self, team: str) -> bool:
        """Owners (the team's builders) and admins may change what a team registered."""
        return self.is_admin or (self.may(Permission.build) and self.in_team(team))
