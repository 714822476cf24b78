"""Who is asking: a person signed in to the hub's pages, or a service with its token."""

from dataclasses import dataclass
from typing import Protocol

from agents.spec import ActorKind
from hub.core.errors import PermissionDeniedError
from hub.core.roles import Permission, Role, allows

__all__ = ["Actor", "ActorKind", "Owned"]


_WHAT = {
    Permission.chat: "chatting",
    Permission.build: "making agents and prompts and registering MCP servers (the builder role)",
    Permission.administer: "administering the platform (the admin role)",
}


class Owned(Protocol):
    """Something with an owner: the owner's kind and id, never their name."""

    @property
    def owner_kind(self) -> str: ...

    @property
    def owner_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    # Who they are for good: a person's key (never given to anyone else), a service's id.
    id: str
    # Who they are called today, for display only: a person may be deleted and another
    # person created with the same name, and a person and a service may share a name.
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

    def has_identity(self, kind: str, actor_id: str) -> bool:
        """This actor is the one (kind, id) names; an empty id is nobody."""
        return bool(actor_id) and kind == self.kind and actor_id == self.id

    def owns(self, thing: Owned) -> bool:
        return self.has_identity(thing.owner_kind, thing.owner_id)

    def in_team(self, team: str) -> bool:
        return team == self.team or team in self.teams

    def can_manage(self, team: str) -> bool:
        """Owners (the team's builders) and admins may change what a team registered."""
        return self.is_admin or (self.may(Permission.build) and self.in_team(team))
