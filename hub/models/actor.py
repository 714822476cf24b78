"""Who is asking: a person signed in to the hub's pages, or a service with its token."""

from dataclasses import dataclass
from typing import Literal

__all__ = ["Actor"]


@dataclass(frozen=True, slots=True)
class Actor:
    kind: Literal["user", "service"]
    name: str
    team: str
    is_admin: bool = False

    def can_manage(self, team: str) -> bool:
        """Owners (the team) and admins may change what a team registered."""
        return self.is_admin or self.team == team
