"""Who may do what: the three roles, written once and checked in one place (`require`).

| role    | may                                                                            |
| ------- | ------------------------------------------------------------------------------ |
| admin   | everything: every team's servers, agents and prompts, usage, costs, breakers,  |
|         | sessions                                                                       |
| builder | what a member may, and make and ship agents and prompts, register MCP servers, |
|         | for their teams                                                                |
| member  | chat with models and published agents, read prompts, share, give feedback      |

A person's role comes from their groups at the identity provider (or from
`switchboard user create --role`); a service token acts as a builder of its team, or as an
admin when it was made with `--admin`.
"""

from enum import StrEnum

__all__ = ["GRANTS", "Permission", "Role", "allows"]


class Role(StrEnum):
    admin = "admin"
    builder = "builder"
    member = "member"


class Permission(StrEnum):
    chat = "chat"  # chat, share, give feedback, read what is published
    build = "build"  # make and ship agents and prompts, register MCP servers for one's teams
    administer = "administer"  # the platform: every team's things, usage, costs, sessions


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset(Permission),
    Role.builder: frozenset({Permission.chat, Permission.build}),
    Role.member: frozenset({Permission.chat}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]
