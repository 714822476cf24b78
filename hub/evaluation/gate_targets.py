"""What the regression gate knows of the two things it gates: a prompt, whose production version
moves, and an agent, whose live version does (both are "production" to the gate). Who reads and
binds a target's gate, its production version, and moving production once a gate check lets a
version through, as each kind's own audit log says it.

A prompt's gate is read by anyone signed in and bound by the prompt's team's builders and
admins; an agent's is read by whoever may read the agent and bound by those who may change it
(its owner and admins).
"""

from dataclasses import dataclass

from sqlmodel import Session

from hub.core.errors import NotFoundError, PermissionDeniedError
from hub.core.roles import Permission
from hub.models.actor import Actor
from hub.models.agent import Agent
from hub.models.evaluation import TargetKind
from hub.models.prompt import Prompt
from hub.services import agents as agent_store
from hub.services import prompts as prompt_store

__all__ = [
    "GateTarget",
    "find_target",
    "may_bind",
    "move_production",
    "production_word",
    "target_of",
]


@dataclass(frozen=True, slots=True)
class GateTarget:
    kind: TargetKind
    # The prompt's name or the agent's slug.
    name: str
    team: str
    # The prompt's production version, or the agent's live one.
    production: int | None
    row: Prompt | Agent


def production_word(kind: str) -> str:
    """How the kind's production version is called in messages."""
    return "the live version" if kind == "agent" else "production"


def find_target(
    session: Session, kind: str, name: str, actor: Actor | None = None
) -> GateTarget | None:
    """The prompt or agent; None when there is none, or (an agent) `actor` may not read it."""
    if kind == "agent":
        agent = agent_store.get_agent(session=session, slug=name)
        if agent is None or (actor is not None and not agent_store.can_read(agent, actor)):
            return None
        live = agent_store.live_version(session=session, agent=agent)
        return GateTarget("agent", agent.slug, agent.team, live.number if live else None, agent)
    prompt = prompt_store.get_prompt(session=session, name=name)
    if prompt is None:
        return None
    return GateTarget("prompt", prompt.name, prompt.team, prompt.production_version, prompt)


def target_of(session: Session, kind: str, name: str, actor: Actor | None = None) -> GateTarget:
    found = find_target(session, kind, name, actor)
    if found is None:
        if kind == "agent":
            raise NotFoundError(f"No agent {name!r} exists, or it is not shared with you.")
        raise NotFoundError(f"No prompt {name!r} exists.")
    return found


def may_bind(actor: Actor, target: GateTarget) -> None:
    actor.require(Permission.build)
    if isinstance(target.row, Agent):
        if not agent_store.can_edit(target.row, actor):
            raise PermissionDeniedError(
                f"Only {target.row.owner!r} (its owner) or an admin can change the gate of the "
                f"agent {target.name!r}."
            )
    elif not actor.can_manage(target.team):
        raise PermissionDeniedError(
            f"Only team {target.team!r}'s builders or an admin can change the gate of the "
            f"prompt {target.name!r}."
        )


def move_production(
    session: Session, target: GateTarget, number: int, actor: Actor, gate_check: int
) -> None:
    """Make version `number` production (an agent's live version), in `actor`'s name and
    naming the gate check that let it through; committed."""
    if isinstance(target.row, Agent):
        version = agent_store.get_version(session=session, agent=target.row, number=number)
        assert version is not None, "an agent's versions are kept while it is"
        agent_store.make_live(
            session=session, agent=target.row, version=version, actor=actor, gate_check=gate_check
        )
        return
    prompt_store.set_production(
        session=session, prompt=target.row, version=number, actor=actor, gate_check=gate_check
    )
