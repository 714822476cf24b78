"""The prompt library at work: who may change a prompt, checks against the model catalog,
versions, production and roll back, diffs, and each prompt's calls by name and their cost in the
last 7 days. Database work runs in worker threads.

Anyone signed in (a person or a service) reads every prompt, so teams learn from each other's;
builders make prompts for their own teams; only the owning team's builders and admins add
versions and choose production (403 for anyone else). A prompt bound to a regression gate
moves production to a version that was never production only once a gate check lets it
(hub/evaluation/gates.py).
"""

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import anyio
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from hub.core.errors import ConflictError, InvalidError, NotFoundError, PermissionDeniedError
from hub.core.roles import Permission
from hub.evaluation.gate_targets import target_of
from hub.evaluation.gates import check_public, start_check
from hub.evaluation.runs import EvalRuns
from hub.gateway.model_catalog import ModelCatalog
from hub.gateway.prompt_calls import PromptResolver
from hub.models.actor import Actor
from hub.models.eval_gate import GateCheckPublic
from hub.models.mcp_server import McpServerPublic
from hub.models.prompt import (
    Prompt,
    PromptCreate,
    PromptDefinition,
    PromptDiff,
    PromptListItem,
    PromptPublic,
    PromptVersion,
    PromptVersionPublic,
)
from hub.models.service import utcnow
from hub.services import mcp_servers as registry_store
from hub.services import prompts as store
from hub.services.model_tools import definition_problems
from hub.services.usage import UsageRecorder

__all__ = ["PromptLibrary"]

T = TypeVar("T")
# The list's figures: calls by name and their cost over this last stretch.
RECENT = timedelta(days=7)


def _prompt(session: Session, name: str) -> Prompt:
    prompt = store.get_prompt(session=session, name=name)
    if prompt is None:
        raise NotFoundError(f"No prompt {name!r} exists.")
    return prompt


def _editable(session: Session, name: str, actor: Actor) -> Prompt:
    prompt = _prompt(session, name)
    actor.require(Permission.build)
    if not actor.can_manage(prompt.team):
        raise PermissionDeniedError(
            f"Only team {prompt.team!r}'s builders or an admin can change the prompt {name!r}."
        )
    return prompt


def _version(session: Session, prompt: Prompt, number: int) -> PromptVersion:
    version = store.get_version(session=session, prompt=prompt, number=number)
    if version is None:
        raise NotFoundError(f"The prompt {prompt.name!r} has no version {number}.")
    return version


class PromptLibrary:
    def __init__(
        self,
        *,
        engine: Engine,
        models: ModelCatalog,
        usage: UsageRecorder,
        resolver: PromptResolver,
    ) -> None:
        self._engine = engine
        self.models = models
        self._usage = usage
        self._resolver = resolver

    async def _change_production(self, work: Callable[[Session], T]) -> T:
        """Run `work`, which may change production, then have this process's calls by name
        read production again (even when `work` failed: it may have failed after its commit)."""
        try:
            return await self._db(work)
        finally:
            self._resolver.production_changed()

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    def _check(self, session: Session, definition: PromptDefinition) -> None:
        problems = definition_problems(
            session=session, definition=definition, models=self.models, user="the prompt"
        )
        if problems:
            raise InvalidError(" ".join(problems))

    async def check(self, definition: PromptDefinition) -> None:
        """Its model is in the catalog (and calls tools, given servers); its servers are
        registered and offer the tools it allows."""
        await self._db(lambda session: self._check(session, definition))

    async def create(self, prompt_in: PromptCreate, actor: Actor) -> PromptPublic:
        actor.require(Permission.build)
        team = prompt_in.team or actor.team
        if not actor.can_manage(team):
            raise PermissionDeniedError(
                f"{actor.name!r} is not in team {team!r}; make the prompt for one of your teams."
            )

        def work(session: Session) -> PromptPublic:
            self._check(session, prompt_in)
            if store.get_prompt(session=session, name=prompt_in.name) is not None:
                raise ConflictError(f"A prompt named {prompt_in.name!r} exists; pick another name.")
            try:
                prompt = store.create_prompt(
                    session=session, prompt_in=prompt_in, team=team, actor=actor
                )
            except IntegrityError as exc:  # made at the same moment by someone else
                raise ConflictError(
                    f"A prompt named {prompt_in.name!r} exists; pick another name."
                ) from exc
            return store.to_public(session=session, prompt=prompt)

        return await self._db(work)

    async def builder_servers(self, selected: list[str]) -> list[McpServerPublic]:
        """The servers a builder may give a prompt: the active ones, and any already chosen."""
        return await self._db(
            lambda s: registry_store.offerable_servers(session=s, selected=selected)
        )

    async def find(self, text: str | None, team: str | None) -> list[PromptListItem]:
        """The prompts with their calls by name and cost in the last 7 days."""
        # Calls still queued in memory count too.
        await self._usage.flush()
        since = utcnow() - RECENT
        return await self._db(
            lambda s: store.list_items(session=s, text=text, team=team, since=since)
        )

    async def get(self, name: str) -> PromptPublic:
        return await self._db(lambda s: store.to_public(session=s, prompt=_prompt(s, name)))

    async def add_version(
        self, name: str, definition: PromptDefinition, actor: Actor
    ) -> PromptVersionPublic:

        def work(session: Session) -> PromptVersionPublic:
            prompt = _editable(session, name, actor)
            self._check(session, definition)
            version = store.add_version(
                session=session, prompt=prompt, definition=definition, actor=actor
            )
            return store.version_public(version, prompt.production_version)

        return await self._db(work)

    async def versions(self, name: str) -> list[PromptVersionPublic]:
        def work(session: Session) -> list[PromptVersionPublic]:
            prompt = _prompt(session, name)
            return [
                store.version_public(v, prompt.production_version)
                for v in store.list_versions(session=session, prompt=prompt)
            ]

        return await self._db(work)

    async def version(self, name: str, number: int) -> PromptVersionPublic:
        def work(session: Session) -> PromptVersionPublic:
            prompt = _prompt(session, name)
            return store.version_public(
                _version(session, prompt, number), prompt.production_version
            )

        return await self._db(work)

    async def make_production(
        self, name: str, number: int, actor: Actor
    ) -> PromptPublic | GateCheckPublic:
        """Make `number` production; when the prompt is gated and `number` was never
        production, a gate check instead, which moves production if the version passes."""

        def work(session: Session) -> PromptPublic | GateCheckPublic:
            prompt = _editable(session, name, actor)
            _version(session, prompt, number)
            if prompt.production_version == number:
                return store.to_public(session=session, prompt=prompt)
            if not store.was_production(session=session, prompt=prompt, number=number):
                runs = EvalRuns(engine=self._engine, models=self.models)
                target = target_of(session, "prompt", name)
                check = start_check(session, runs=runs, target=target, number=number, actor=actor)
                if check is not None:
                    return check_public(session, check)
            changed = store.set_production(
                session=session, prompt=prompt, version=number, actor=actor
            )
            return store.to_public(session=session, prompt=changed)

        return await self._change_production(work)

    async def rollback(self, name: str, actor: Actor) -> PromptPublic:
        def work(session: Session) -> PromptPublic:
            prompt = _editable(session, name, actor)
            target = store.rollback_target(session=session, prompt=prompt)
            if target is None:
                raise ConflictError(
                    f"v{prompt.production_version} of {name!r} is the first version that was "
                    "production: there is none before it to roll back to."
                )
            changed = store.set_production(
                session=session, prompt=prompt, version=target, actor=actor, rollback=True
            )
            return store.to_public(session=session, prompt=changed)

        return await self._change_production(work)

    async def diff(self, name: str, old: int, new: int) -> PromptDiff:
        def work(session: Session) -> PromptDiff:
            prompt = _prompt(session, name)
            lines = store.diff_lines(_version(session, prompt, old), _version(session, prompt, new))
            return PromptDiff(name=name, from_version=old, to_version=new, lines=lines)

        return await self._db(work)
