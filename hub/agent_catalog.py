"""The agent catalog at work: who may read and change an agent, validation against the model
catalog and the MCP registry, publishing and restoring. Database work runs in worker threads.

Publishing an agent bound to a regression gate freezes its draft as the next version and starts
a gate check, which makes that version live once it scores no worse than the live one
(hub/evaluation/gates.py); restoring a version is not gated, but a version the gate held back
(one that never went live) cannot be restored while the agent is gated.

Someone who may not read an agent gets 404, as if it did not exist; someone who may read it
but not change it gets 403.
"""

from collections.abc import Callable
from typing import TypeVar

import anyio
from sqlalchemy import Engine
from sqlmodel import Session

from agents.spec import AgentSpec
from hub.core.errors import ConflictError, InvalidError, NotFoundError, PermissionDeniedError
from hub.core.roles import Permission
from hub.evaluation.gate_targets import target_of
from hub.evaluation.gates import check_public, held_versions, start_check
from hub.evaluation.runs import EvalRuns
from hub.gateway.model_catalog import ModelCatalog
from hub.models.actor import Actor
from hub.models.agent import (
    Agent,
    AgentCreate,
    AgentDefinition,
    AgentListItem,
    AgentPublic,
    AgentUpdate,
    AgentVersionPublic,
)
from hub.models.eval_gate import GateCheckPublic
from hub.models.mcp_server import McpServerPublic
from hub.services import agents as store
from hub.services import eval_gates as gates_store
from hub.services import mcp_servers as registry_store
from hub.services.model_tools import definition_problems

__all__ = ["AgentCatalog"]

T = TypeVar("T")


def _readable(session: Session, slug: str, actor: Actor) -> Agent:
    agent = store.get_agent(session=session, slug=slug)
    if agent is None or not store.can_read(agent, actor):
        raise NotFoundError(f"No agent {slug!r} exists, or it is not shared with you.")
    return agent


def _editable(session: Session, slug: str, actor: Actor) -> Agent:
    agent = _readable(session, slug, actor)
    actor.require(Permission.build)
    if not store.can_edit(agent, actor):
        raise PermissionDeniedError(
            f"Only {agent.owner!r} (its owner) or an admin can change {slug!r}."
        )
    return agent


class AgentCatalog:
    def __init__(self, *, engine: Engine, models: ModelCatalog) -> None:
        self._engine = engine
        self._models = models

    @property
    def model_names(self) -> list[str]:
        return [entry.name for entry in self._models.models]

    @property
    def models_without_tools(self) -> list[str]:
        """The models that cannot call tools, so cannot run an agent with MCP servers."""
        return [e.name for e in self._models.models if not e.capabilities.tool_calling]

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    def _check(self, session: Session, definition: AgentDefinition) -> None:
        problems = definition_problems(
            session=session, definition=definition, models=self._models, user="the agent"
        )
        if problems:
            raise InvalidError(" ".join(problems))

    async def create(self, agent_in: AgentCreate, actor: Actor) -> AgentPublic:
        actor.require(Permission.build)

        def work(session: Session) -> AgentPublic:
            if store.get_agent(session=session, slug=agent_in.slug) is not None:
                raise ConflictError(f"The slug {agent_in.slug!r} is taken; choose another.")
            self._check(session, agent_in)
            agent = store.create_agent(session=session, agent_in=agent_in, actor=actor)
            return store.to_public(session=session, agent=agent, show_draft=True)

        return await self._db(work)

    async def find(
        self, actor: Actor, text: str | None = None, mine: bool = False
    ) -> list[AgentListItem]:
        """Published agents the actor may read; with `mine`, the actor's own, drafts too."""

        def work(session: Session) -> list[AgentListItem]:
            if mine:
                found = store.list_agents(session=session, owner=actor)
            else:
                found = store.list_agents(session=session, published_only=True)
            items = [
                store.list_item(session=session, agent=agent, show_draft=mine)
                for agent in found
                if store.can_read(agent, actor)
            ]
            return [i for i in items if store.matches(text, i.slug, i.name, i.description)]

        return await self._db(work)

    async def get(self, slug: str, actor: Actor) -> AgentPublic:
        def work(session: Session) -> AgentPublic:
            agent = _readable(session, slug, actor)
            show_draft = store.can_edit(agent, actor)
            return store.to_public(session=session, agent=agent, show_draft=show_draft)

        return await self._db(work)

    async def update(self, slug: str, update: AgentUpdate, actor: Actor) -> AgentPublic:
        def work(session: Session) -> AgentPublic:
            agent = _editable(session, slug, actor)
            self._check(session, store.updated_draft(agent, update))
            agent = store.update_agent(session=session, agent=agent, update=update)
            return store.to_public(session=session, agent=agent, show_draft=True)

        return await self._db(work)

    async def publish(self, slug: str, actor: Actor) -> AgentVersionPublic | GateCheckPublic:
        """Freeze the draft as the next version and make it live; for a gated agent with a
        live version, the gate check that makes it live if it passes."""

        def work(session: Session) -> AgentVersionPublic | GateCheckPublic:
            agent = _editable(session, slug, actor)
            self._check(session, AgentPublic.definition_of(agent))
            version = store.freeze_draft(session=session, agent=agent, actor=actor)
            runs = EvalRuns(engine=self._engine, models=self._models)
            target = target_of(session, "agent", slug)
            number = version.number
            check = start_check(session, runs=runs, target=target, number=number, actor=actor)
            if check is not None:
                return check_public(session, check)
            store.make_live(session=session, agent=agent, version=version, actor=actor)
            session.refresh(version)
            return store.version_public(version, version.id)

        return await self._db(work)

    async def versions(self, slug: str, actor: Actor) -> list[AgentVersionPublic]:
        def work(session: Session) -> list[AgentVersionPublic]:
            agent = _readable(session, slug, actor)
            return [
                store.version_public(version, agent.live_version_id)
                for version in store.list_versions(session=session, agent=agent)
            ]

        return await self._db(work)

    async def restore(self, slug: str, number: int, actor: Actor) -> AgentVersionPublic:
        def work(session: Session) -> AgentVersionPublic:
            agent = _editable(session, slug, actor)
            version = store.get_version(session=session, agent=agent, number=number)
            if version is None:
                raise NotFoundError(f"{slug!r} has no version {number}.")
            held = held_versions(session, "agent", slug)
            gated = gates_store.get_gate(session=session, target_kind="agent", target=slug)
            if number in held and gated is not None and agent.live_version_id != version.id:
                raise ConflictError(
                    f"v{number} of {slug!r} never went live: its gate check {held[number]} held "
                    "it back, and restoring is for versions that were live. Publish a better "
                    "draft, or an admin may override that check."
                )
            store.restore_version(session=session, agent=agent, version=version, actor=actor)
            return store.version_public(version, version.id)

        return await self._db(work)

    async def delete(self, slug: str, actor: Actor) -> None:
        def work(session: Session) -> None:
            agent = _editable(session, slug, actor)
            gates_store.forget_target(session=session, target_kind="agent", target=slug)
            store.delete_agent(session=session, agent=agent, actor=actor)

        await self._db(work)

    async def live_spec(self, slug: str, actor: Actor) -> AgentSpec:
        def work(session: Session) -> AgentSpec:
            agent = _readable(session, slug, actor)
            live = store.live_version(session=session, agent=agent)
            if live is None:
                raise NotFoundError(f"{slug!r} has no published version yet.")
            return store.run_spec(
                session=session, agent=agent, source=live, models=self._models, actor=actor
            )

        return await self._db(work)

    async def draft_spec(self, slug: str, actor: Actor) -> AgentSpec:
        def work(session: Session) -> AgentSpec:
            agent = _editable(session, slug, actor)
            return store.run_spec(
                session=session, agent=agent, source=agent, models=self._models, actor=actor
            )

        return await self._db(work)

    async def model_chat_spec(self, model: str, servers: list[str], actor: Actor) -> AgentSpec:
        """A chat with `model` and the MCP servers `actor` switched on, as the runtime runs it."""
        actor.require(Permission.chat)
        if self._models.get(model) is None:
            known = ", ".join(self.model_names) or "none"
            raise NotFoundError(f"There is no model {model!r} in the catalog (it has: {known}).")

        def work(session: Session) -> AgentSpec:
            return store.model_chat_spec(
                session=session, model=model, servers=servers, models=self._models, actor=actor
            )

        return await self._db(work)

    async def builder_servers(self, selected: list[str]) -> list[McpServerPublic]:
        """The servers the Builder offers: the active ones, and any already selected."""
        return await self._db(
            lambda s: registry_store.offerable_servers(session=s, selected=selected)
        )
