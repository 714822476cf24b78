"""Evaluation runs at work: who may start and cancel one, what it will cost, and what it gave.
Database work runs in worker threads; the cases are answered by the runner
(hub/evaluation/runner.py).

Anyone signed in reads every run. The prompt's team's builders (and its services) and admins
estimate, start and cancel runs of its versions; those who may change an agent (its owner and
admins) do so for the agent's versions.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
from sqlalchemy import Engine
from sqlmodel import Session

from hub.core.errors import InvalidError, NotFoundError, PermissionDeniedError
from hub.core.roles import Permission
from hub.evaluation.checks import prepare_checks
from hub.evaluation.estimate import estimate_agent_run, estimate_run
from hub.evaluation.judge_prompts import JudgeVersions, resolve_judge_checks
from hub.evaluation.run_figures import aggregates, compare, result_public
from hub.gateway.model_catalog import ModelCatalog
from hub.models.actor import Actor
from hub.models.agent import Agent, AgentVersion
from hub.models.evaluation import (
    Check,
    EvalCase,
    EvalRun,
    EvalSet,
    ResultPage,
    RunComparison,
    RunCreate,
    RunEstimate,
    RunPublic,
    RunStatus,
    TargetKind,
)
from hub.models.prompt import Prompt, PromptVersion
from hub.services import agents as agent_store
from hub.services import eval_runs as store
from hub.services import eval_sets as sets_store
from hub.services import prompts as prompt_store
from hub.services.audit import record_event

__all__ = ["EvalRuns"]

T = TypeVar("T")
# What a run names: its kind, the prompt's name or agent's slug, its team and the version.
_Target = tuple[TargetKind, str, str, PromptVersion | AgentVersion]


@dataclass(frozen=True, slots=True)
class _Plan:
    test_set: EvalSet
    set_version: int
    cases: list[EvalCase]
    kind: TargetKind
    # The prompt's name or the agent's slug, and its team.
    target: str
    team: str
    version: PromptVersion | AgentVersion
    # The checks with their judge prompts' versions fixed, and those versions.
    checks: list[Check]
    judges: JudgeVersions


def _run(session: Session, run_id: int) -> EvalRun:
    run = store.get_run(session=session, run_id=run_id)
    if run is None:
        raise NotFoundError(f"No evaluation run {run_id} exists.")
    return run


def _may_run(actor: Actor, prompt: Prompt) -> None:
    actor.require(Permission.build)
    if not actor.can_manage(prompt.team):
        raise PermissionDeniedError(
            f"Only team {prompt.team!r}'s builders or an admin can run the prompt {prompt.name!r}."
        )


def _readable_agent(session: Session, slug: str, actor: Actor) -> Agent:
    agent = agent_store.get_agent(session=session, slug=slug)
    if agent is None or not agent_store.can_read(agent, actor):
        raise NotFoundError(f"No agent {slug!r} exists, or it is not shared with you.")
    return agent


def _may_run_agent(actor: Actor, agent: Agent) -> None:
    """As for changing the agent: its owner and admins."""
    actor.require(Permission.build)
    if not agent_store.can_edit(agent, actor):
        raise PermissionDeniedError(
            f"Only {agent.owner!r} (its owner) or an admin can run the agent {agent.slug!r}."
        )


def _may_manage(session: Session, run: EvalRun, actor: Actor) -> None:
    """Who may cancel a run: who may start runs of its prompt or agent (admins, when it is
    gone)."""
    if run.target_kind == "agent":
        agent = agent_store.get_agent(session=session, slug=run.target)
        if agent is not None:
            _may_run_agent(actor, agent)
            return
    else:
        prompt = prompt_store.get_prompt(session=session, name=run.target)
        if prompt is not None:
            _may_run(actor, prompt)
            return
    actor.require(Permission.administer)


def _prompt_target(session: Session, body: RunCreate, actor: Actor, name: str) -> _Target:
    prompt = prompt_store.get_prompt(session=session, name=name)
    if prompt is None:
        raise NotFoundError(f"No prompt {name!r} exists.")
    _may_run(actor, prompt)
    number = body.version or prompt.production_version
    version = (
        prompt_store.get_version(session=session, prompt=prompt, number=number) if number else None
    )
    if version is None:
        raise NotFoundError(f"The prompt {prompt.name!r} has no version {number}.")
    return "prompt", prompt.name, prompt.team, version


def _agent_target(session: Session, body: RunCreate, actor: Actor, slug: str) -> _Target:
    agent = _readable_agent(session, slug, actor)
    _may_run_agent(actor, agent)
    if body.version is not None:
        version = agent_store.get_version(session=session, agent=agent, number=body.version)
    else:
        version = agent_store.live_version(session=session, agent=agent)
    if version is None:
        which = f"no version {body.version}" if body.version else "no live version"
        raise NotFoundError(f"The agent {slug!r} has {which}; publish it first.")
    return "agent", agent.slug, agent.team, version


def _plan(session: Session, body: RunCreate, actor: Actor) -> _Plan:
    if body.agent is not None and body.prompt is not None:
        raise InvalidError("Name a 'prompt' or an 'agent' to run, not both.")
    if body.prompt is None and body.agent is None:
        raise InvalidError("Name the 'prompt' or the 'agent' whose version to run.")
    test_set = sets_store.get_set(session=session, name=body.test_set)
    if test_set is None or test_set.id is None:
        raise NotFoundError(f"No test set {body.test_set!r} exists.")
    set_version = sets_store.get_version(
        session=session,
        eval_set=test_set,
        number=body.set_version or test_set.latest_version,
    )
    if set_version is None or set_version.id is None:
        which = f"no version {body.set_version}" if body.set_version else "no cases uploaded yet"
        raise NotFoundError(f"The test set {test_set.name!r} has {which}.")
    if body.prompt is not None:
        kind, target, team, version = _prompt_target(session, body, actor, body.prompt)
    else:
        assert body.agent is not None
        kind, target, team, version = _agent_target(session, body, actor, body.agent)
    cases = store.list_cases(session=session, version_id=set_version.id)
    checks, judges = resolve_judge_checks(session, body.checks)
    return _Plan(test_set, set_version.number, cases, kind, target, team, version, checks, judges)


class EvalRuns:
    def __init__(self, *, engine: Engine, models: ModelCatalog) -> None:
        self._engine = engine
        self.models = models

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    def _estimate(self, plan: _Plan) -> RunEstimate:
        prepare_checks(plan.checks, self.models, plan.judges)
        if isinstance(plan.version, AgentVersion):
            return estimate_agent_run(
                version=plan.version,
                cases=plan.cases,
                checks=plan.checks,
                judges=plan.judges,
                catalog=self.models,
            )
        return estimate_run(
            prompt=plan.target,
            version=plan.version,
            cases=plan.cases,
            checks=plan.checks,
            judges=plan.judges,
            catalog=self.models,
        )

    async def estimate(self, body: RunCreate, actor: Actor) -> RunEstimate:
        """What the run would cost; nothing is made."""
        return await self._db(lambda s: self._estimate(_plan(s, body, actor)))

    def queue(self, session: Session, body: RunCreate, actor: Actor) -> EvalRun:
        """Add a queued run with its estimate to `session` (the caller commits it)."""
        plan = _plan(session, body, actor)
        estimate = self._estimate(plan)
        assert plan.test_set.id is not None
        run = EvalRun(
            set_id=plan.test_set.id,
            set_version=plan.set_version,
            target_kind=plan.kind,
            target=plan.target,
            target_version=plan.version.number,
            checks=[check.model_dump(mode="json") for check in plan.checks],
            concurrency=body.concurrency,
            cases=len(plan.cases),
            estimated_cost_usd=estimate.estimated_cost_usd,
            team=plan.team,
            created_by=actor.name,
        )
        session.add(run)
        session.flush()
        details = {
            "set": plan.test_set.name,
            "set_version": plan.set_version,
            f"{plan.kind}_version": plan.version.number,
            "cases": len(plan.cases),
        }
        self._record(session, actor, "eval_run.created", run, details)
        return run

    async def create(self, body: RunCreate, actor: Actor) -> RunPublic:
        """A queued run with its estimate; a hub's runner picks it up within a poll interval."""

        def work(session: Session) -> RunPublic:
            run = self.queue(session, body, actor)
            session.commit()
            session.refresh(run)
            return self._public(session, [run])[0]

        return await self._db(work)

    def check_plan(self, session: Session, body: RunCreate, actor: Actor) -> None:
        """Whether a run of `body` could be made: the refusal it would get, if any."""
        self._estimate(_plan(session, body, actor))

    @staticmethod
    def _record(
        session: Session, actor: Actor, action: str, run: EvalRun, details: dict[str, object]
    ) -> None:
        record_event(
            session=session,
            actor=actor,
            action=action,
            object_kind="eval_run",
            object_id=str(run.id),
            details={run.target_kind: run.target, **details},
        )

    @staticmethod
    def _public(session: Session, runs: list[EvalRun]) -> list[RunPublic]:
        names = store.set_names(session=session, set_ids={run.set_id for run in runs})
        progress = store.progress_of(session=session, runs=runs)
        return [
            RunPublic(
                **run.model_dump(exclude={"set_id", "status", "checks"}),
                set=names.get(run.set_id, "?"),
                status=RunStatus(run.status),
                checks=[Check.model_validate(check) for check in run.checks],
                progress=progress[run.id],
            )
            for run in runs
            if run.id is not None
        ]

    async def choices(self, set_name: str, prompt: str) -> tuple[list[int], list[int], int | None]:
        """For the run form: the set's versions and the prompt's (newest first), and which of
        the prompt's is production; empty for a name that is not there."""

        def work(session: Session) -> tuple[list[int], list[int], int | None]:
            test_set = sets_store.get_set(session=session, name=set_name) if set_name else None
            found = prompt_store.get_prompt(session=session, name=prompt) if prompt else None
            set_versions = (
                store.set_version_numbers(session=session, set_id=test_set.id)
                if test_set is not None and test_set.id is not None
                else []
            )
            if found is None:
                return set_versions, [], None
            versions = prompt_store.list_versions(session=session, prompt=found)
            return set_versions, [v.number for v in versions], found.production_version

        return await self._db(work)

    async def agent_choices(self, slug: str, actor: Actor) -> tuple[list[int], int | None]:
        """For the run form: the agent's versions (newest first) and its live one's number;
        empty for an agent that is not there or not shared with `actor`."""

        def work(session: Session) -> tuple[list[int], int | None]:
            agent = agent_store.get_agent(session=session, slug=slug) if slug else None
            if agent is None or not agent_store.can_read(agent, actor):
                return [], None
            live = agent_store.live_version(session=session, agent=agent)
            versions = agent_store.list_versions(session=session, agent=agent)
            return [v.number for v in versions], live.number if live else None

        return await self._db(work)

    async def find(
        self, set_name: str | None, prompt: str | None, *, offset: int = 0, limit: int = 200
    ) -> list[RunPublic]:
        """The newest runs first, of one set and one prompt when named: `offset` skipped, at
        most `limit`."""

        def work(session: Session) -> list[RunPublic]:
            set_id = None
            if set_name:
                test_set = sets_store.get_set(session=session, name=set_name)
                if test_set is None or test_set.id is None:
                    return []
                set_id = test_set.id
            runs = store.list_runs(
                session=session, set_id=set_id, prompt=prompt, offset=offset, limit=limit
            )
            return self._public(session, runs)

        return await self._db(work)

    async def get(self, run_id: int) -> RunPublic:
        """The run with its progress and the figures of its results so far."""

        def work(session: Session) -> RunPublic:
            run = _run(session, run_id)
            public = self._public(session, [run])[0]
            public.aggregates = aggregates(store.results_with_cases(session=session, run_id=run_id))
            return public

        return await self._db(work)

    async def results(
        self, run_id: int, *, offset: int, limit: int, only_failed: bool
    ) -> ResultPage:
        """The results in the cases' order; `only_failed`: those that did not pass."""

        def work(session: Session) -> ResultPage:
            _run(session, run_id)
            rows = store.results_with_cases(session=session, run_id=run_id, only_failed=only_failed)
            shown = [result_public(r, c) for r, c in rows[offset : offset + limit]]
            return ResultPage(total=len(rows), offset=offset, limit=limit, results=shown)

        return await self._db(work)

    async def may_cancel(self, run_id: int, actor: Actor) -> bool:
        """Whether `actor` may cancel the run (for its page)."""

        def work(session: Session) -> bool:
            try:
                _may_manage(session, _run(session, run_id), actor)
            except PermissionDeniedError:
                return False
            return True

        return await self._db(work)

    async def cancel(self, run_id: int, actor: Actor) -> RunPublic:
        """No more cases are sent; those being answered finish."""

        def work(session: Session) -> RunPublic:
            run = _run(session, run_id)
            _may_manage(session, run, actor)
            if run.status in store.ACTIVE:
                # Committed with the change by cancel_run.
                self._record(session, actor, "eval_run.cancelled", run, {})
                run = store.cancel_run(session=session, run=run)
            return self._public(session, [run])[0]

        return await self._db(work)

    async def compare(self, before_id: int, after_id: int) -> RunComparison:
        """Which cases passed in `after_id` and not in `before_id` (better), and the other way
        round (worse); both must be runs of one test-set version."""

        def work(session: Session) -> RunComparison:
            before, after = _run(session, before_id), _run(session, after_id)
            if (before.set_id, before.set_version) != (after.set_id, after.set_version):
                raise InvalidError(
                    f"Runs {before_id} and {after_id} are of different test sets or versions "
                    "of one; compare two runs of the same test-set version."
                )
            return compare(
                before_id,
                after_id,
                store.results_with_cases(session=session, run_id=before_id),
                store.results_with_cases(session=session, run_id=after_id),
                after.cases,
            )

        return await self._db(work)
