"""The agent catalog in the database: agents and their drafts, published versions, who sees what.

Who may read an agent: its owner and admins always; anyone else only once a version is live,
and then as its visibility says (everyone, or the owner's team). Only the owner and admins see
the draft or change anything. The owner is compared as (kind, id), never by name.
"""

from typing import Any, cast

from sqlmodel import Session, col, delete, func, select

from agents.spec import MODEL_CHAT, AgentSpec
from hub.gateway.model_catalog import ModelCatalog, ModelEntry
from hub.models.actor import Actor, ActorKind, Owned
from hub.models.agent import (
    Agent,
    AgentCreate,
    AgentDefinition,
    AgentListItem,
    AgentPublic,
    AgentUpdate,
    AgentVersion,
    AgentVersionPublic,
    Visibility,
)
from hub.models.service import utcnow
from hub.services.audit import record_event
from hub.services.model_tools import offered_tools

__all__ = [
    "can_edit",
    "can_read",
    "create_agent",
    "delete_agent",
    "freeze_draft",
    "get_agent",
    "get_version",
    "list_agents",
    "list_item",
    "list_versions",
    "live_version",
    "make_live",
    "matches",
    "model_chat_spec",
    "publish_draft",
    "restore_version",
    "run_spec",
    "to_public",
    "update_agent",
    "updated_draft",
    "version_public",
]

_DEFINITION_FIELDS = tuple(AgentDefinition.model_fields)


def can_edit(agent: Owned, actor: Actor) -> bool:
    return actor.is_admin or actor.owns(agent)


def can_read(agent: Agent, actor: Actor) -> bool:
    if can_edit(agent, actor):
        return True
    if agent.live_version_id is None:
        return False
    if agent.visibility == Visibility.everyone:
        return True
    return agent.visibility == Visibility.team and actor.in_team(agent.team)


def matches(text: str | None, *fields: str) -> bool:
    """Every word of `text` appears somewhere in the fields (case-insensitive)."""
    haystack = " ".join(fields).lower()
    return all(word in haystack for word in (text or "").lower().split())


def get_agent(*, session: Session, slug: str) -> Agent | None:
    return session.exec(select(Agent).where(Agent.slug == slug)).first()


def list_agents(
    *, session: Session, owner: Actor | None = None, published_only: bool = False
) -> list[Agent]:
    query = select(Agent).order_by(col(Agent.name), col(Agent.slug))
    if owner is not None:
        query = query.where(Agent.owner_kind == owner.kind, Agent.owner_id == owner.id)
    if published_only:
        query = query.where(col(Agent.live_version_id).is_not(None))
    return list(session.exec(query).all())


def live_version(*, session: Session, agent: Agent) -> AgentVersion | None:
    if agent.live_version_id is None:
        return None
    return session.get(AgentVersion, agent.live_version_id)


def get_version(*, session: Session, agent: Agent, number: int) -> AgentVersion | None:
    query = select(AgentVersion).where(
        AgentVersion.agent_id == agent.id, AgentVersion.number == number
    )
    return session.exec(query).first()


def list_versions(*, session: Session, agent: Agent) -> list[AgentVersion]:
    query = (
        select(AgentVersion)
        .where(AgentVersion.agent_id == agent.id)
        .order_by(col(AgentVersion.number).desc())
    )
    return list(session.exec(query).all())


def _cleaned(values: dict[str, Any]) -> dict[str, Any]:
    """Servers and allowed tools without repeats, in the order given."""
    if values.get("mcp_servers") is not None:
        values["mcp_servers"] = list(dict.fromkeys(values["mcp_servers"]))
    if values.get("allowed_tools") is not None:
        values["allowed_tools"] = {
            slug: list(dict.fromkeys(tools)) for slug, tools in values["allowed_tools"].items()
        }
    return values


def create_agent(*, session: Session, agent_in: AgentCreate, actor: Actor) -> Agent:
    agent = Agent(
        **_cleaned(agent_in.model_dump()),
        owner=actor.name,
        owner_kind=actor.kind,
        owner_id=actor.id,
        team=actor.team,
    )
    session.add(agent)
    _record(session, actor, "agent.created", agent, {"name": agent.name, "team": agent.team})
    session.commit()
    session.refresh(agent)
    return agent


def _record(
    session: Session, actor: Actor, action: str, agent: Agent, details: dict[str, Any]
) -> None:
    record_event(
        session=session,
        actor=actor,
        action=action,
        object_kind="agent",
        object_id=agent.slug,
        details=details,
    )


def updated_draft(agent: Agent, update: AgentUpdate) -> AgentDefinition:
    """The draft's definition as it would be after `update` (to validate before saving). A
    server taken out of `mcp_servers` takes its allow-list with it."""
    merged = AgentPublic.definition_of(agent).model_dump()
    changes = {
        key: value
        for key, value in update.model_dump(exclude_unset=True).items()
        if key in _DEFINITION_FIELDS and value is not None
    }
    if "mcp_servers" in changes and "allowed_tools" not in changes:
        changes["allowed_tools"] = {
            slug: tools
            for slug, tools in merged["allowed_tools"].items()
            if slug in changes["mcp_servers"]
        }
    merged.update(changes)
    return AgentDefinition.model_validate(_cleaned(merged))


def update_agent(*, session: Session, agent: Agent, update: AgentUpdate) -> Agent:
    for key, value in updated_draft(agent, update).model_dump().items():
        setattr(agent, key, value)
    for key in ("name", "description", "visibility"):
        if (value := getattr(update, key)) is not None:
            setattr(agent, key, value)
    agent.updated_at = utcnow()
    session.add(agent)
    session.commit()
    session.refresh(agent)
    return agent


def freeze_draft(*, session: Session, agent: Agent, actor: Actor) -> AgentVersion:
    """Freeze the draft as the next version, not live (flushed, not committed): for a gated
    agent, whose version goes live once its gate check lets it (hub/evaluation/gates.py)."""
    # Lock the agent's row (PostgreSQL) so two publishes cannot take the same number.
    locked = session.exec(select(Agent).where(Agent.id == agent.id).with_for_update()).one()
    last = session.exec(
        select(func.max(AgentVersion.number)).where(AgentVersion.agent_id == locked.id)
    ).one()
    assert locked.id is not None
    version = AgentVersion(
        **AgentPublic.definition_of(locked).model_dump(),
        agent_id=locked.id,
        number=(last or 0) + 1,
        name=locked.name,
        description=locked.description,
        published_by=actor.name,
    )
    session.add(version)
    session.flush()
    return version


def make_live(
    *,
    session: Session,
    agent: Agent,
    version: AgentVersion,
    actor: Actor,
    gate_check: int | None = None,
) -> None:
    """Make a version published by `freeze_draft` live, in the audit log as its publishing
    (naming the gate check that let it through, if any); committed."""
    locked = session.exec(select(Agent).where(Agent.id == agent.id).with_for_update()).one()
    locked.live_version_id = version.id
    locked.updated_at = utcnow()
    session.add(locked)
    details: dict[str, Any] = {"version": version.number}
    if gate_check is not None:
        details["gate_check"] = gate_check
    _record(session, actor, "agent.published", locked, details)
    session.commit()


def publish_draft(*, session: Session, agent: Agent, actor: Actor) -> AgentVersion:
    """Freeze the draft as the next version and make it live."""
    version = freeze_draft(session=session, agent=agent, actor=actor)
    make_live(session=session, agent=agent, version=version, actor=actor)
    session.refresh(version)
    return version


def restore_version(*, session: Session, agent: Agent, version: AgentVersion, actor: Actor) -> None:
    agent.live_version_id = version.id
    agent.updated_at = utcnow()
    session.add(agent)
    _record(session, actor, "agent.restored", agent, {"version": version.number})
    session.commit()


def delete_agent(*, session: Session, agent: Agent, actor: Actor) -> None:
    session.exec(delete(AgentVersion).where(col(AgentVersion.agent_id) == agent.id))
    session.delete(agent)
    _record(session, actor, "agent.deleted", agent, {"name": agent.name, "owner": agent.owner})
    session.commit()


def version_public(version: AgentVersion, live_id: int | None) -> AgentVersionPublic:
    return AgentVersionPublic.model_validate(
        {**version.model_dump(), "is_live": version.id == live_id}
    )


def to_public(*, session: Session, agent: Agent, show_draft: bool) -> AgentPublic:
    """The agent as `AgentPublic`. Without `show_draft` (anyone but its owner and admins) the
    name, description and `draft` are the live version's, so nothing unpublished shows."""
    live = live_version(session=session, agent=agent)
    source: Agent | AgentVersion = agent if show_draft or live is None else live
    versions = [
        version_public(v, agent.live_version_id)
        for v in list_versions(session=session, agent=agent)
    ]
    return AgentPublic(
        **agent.model_dump(
            include={"id", "slug", "owner", "owner_kind", "owner_id", "team", "visibility"}
        ),
        created_at=agent.created_at,
        updated_at=agent.updated_at if show_draft or live is None else live.published_at,
        name=source.name,
        description=source.description,
        draft=AgentPublic.definition_of(source),
        live=version_public(live, agent.live_version_id) if live else None,
        versions=versions,
    )


def list_item(*, session: Session, agent: Agent, show_draft: bool) -> AgentListItem:
    live = live_version(session=session, agent=agent)
    source: Agent | AgentVersion = agent if show_draft or live is None else live
    return AgentListItem(
        slug=agent.slug,
        name=source.name,
        description=source.description,
        owner=agent.owner,
        team=agent.team,
        visibility=agent.visibility,
        model=source.model,
        starters=list(source.starters),
        live_version=live.number if live else None,
        updated_at=agent.updated_at if show_draft or live is None else live.published_at,
    )


def _model_fields(entry: ModelEntry | None) -> dict[str, Any]:
    return {
        "model_available": entry is not None,
        "model_calls_tools": entry.capabilities.tool_calling if entry else True,
        "input_usd_per_million": entry.input_usd_per_million if entry else 0.0,
        "output_usd_per_million": entry.output_usd_per_million if entry else 0.0,
    }


def run_spec(
    *,
    session: Session,
    agent: Agent,
    source: Agent | AgentVersion,
    models: ModelCatalog,
    actor: Actor,
) -> AgentSpec:
    """What the runtime needs for `actor` to run `source` (a version, or the agent's draft):
    the tools of its active servers, filtered by its allow-list, and the model's prices."""
    tools, unavailable = offered_tools(session, source.mcp_servers, source.allowed_tools)
    return AgentSpec(
        **AgentPublic.definition_of(source).model_dump(
            include={"instructions", "model", "starters", "max_steps", "max_tokens", "timeout_s"}
        ),
        slug=agent.slug,
        name=source.name,
        description=source.description,
        owner=agent.owner,
        # Stored from an ActorKind; the table keeps it as text.
        owner_kind=cast(ActorKind, agent.owner_kind),
        owner_id=agent.owner_id,
        user_kind=actor.kind,
        user_id=actor.id,
        team=agent.team,
        version=source.number if isinstance(source, AgentVersion) else None,
        is_draft=isinstance(source, Agent),
        tools=tuple(tools),
        unavailable_servers=unavailable,
        **_model_fields(models.get(source.model)),
    )


# A chat with a model runs on the agent runtime with these limits: as many tool rounds as an
# agent's default, the answer's length its catalog entry sets (`chat_max_tokens`, else the
# model's own), and more time than an agent's default, for long answers from a slow model.
MODEL_CHAT_MAX_STEPS = 8
MODEL_CHAT_TIMEOUT_S = 600


def model_chat_spec(
    *, session: Session, model: str, servers: list[str], models: ModelCatalog, actor: Actor
) -> AgentSpec:
    """What the runtime needs for `actor` to chat with `model` with the MCP servers they
    switched on: an agent with no instructions, owned by the person, so its traces are theirs."""
    tools, unavailable = offered_tools(session, servers, {})
    entry = models.get(model)
    return AgentSpec(
        slug=MODEL_CHAT,
        name=model,
        owner=actor.name,
        owner_kind=actor.kind,
        owner_id=actor.id,
        user_kind=actor.kind,
        user_id=actor.id,
        team=actor.team,
        model=model,
        max_steps=MODEL_CHAT_MAX_STEPS,
        max_tokens=entry.chat_max_tokens if entry else None,
        timeout_s=MODEL_CHAT_TIMEOUT_S,
        tools=tuple(tools),
        unavailable_servers=unavailable,
        **_model_fields(entry),
    )
