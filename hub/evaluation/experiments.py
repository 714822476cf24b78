"""Experiments at work: who may start and stop one and report outcomes, and what it shows.

Anyone signed in reads every experiment. The prompt's team's builders (and its services) and
admins start and stop experiments on it and report their units' outcomes. A prompt has at
most one running experiment. Database work runs in worker threads.
"""

from collections.abc import Callable
from typing import TypeVar

import anyio
from sqlalchemy import Engine
from sqlmodel import Session, select

from hub.core.errors import ConflictError, InvalidError, NotFoundError, PermissionDeniedError
from hub.core.roles import Permission
from hub.evaluation.experiment_stats import Comparison, compare_arms, extra_units
from hub.gateway.experiment_calls import ExperimentResolver
from hub.gateway.model_catalog import ModelCatalog
from hub.models.actor import Actor
from hub.models.experiment import (
    Analysis,
    ArmFigures,
    CallPage,
    Experiment,
    ExperimentCallPublic,
    ExperimentCreate,
    ExperimentPublic,
    ExperimentStatus,
    OutcomeIn,
    OutcomePublic,
)
from hub.models.prompt import Prompt
from hub.models.service import utcnow
from hub.services import experiments as store
from hub.services import prompts as prompt_store
from hub.services.audit import record_event

__all__ = ["Experiments", "experiment_public"]

T = TypeVar("T")


def _may_change(actor: Actor, team: str, prompt: str) -> None:
    actor.require(Permission.build)
    if not actor.can_manage(team):
        raise PermissionDeniedError(
            f"Only team {team!r}'s builders and services, or an admin, can do this with the "
            f"experiments on the prompt {prompt!r}."
        )


def _experiment(session: Session, experiment_id: int) -> Experiment:
    experiment = store.get_experiment(session=session, experiment_id=experiment_id)
    if experiment is None:
        raise NotFoundError(f"No experiment {experiment_id} exists.")
    return experiment


def _analysis(comparison: Comparison) -> Analysis:
    return Analysis(
        a=ArmFigures(units=comparison.units_a, outcome_rate=comparison.rate_a),
        b=ArmFigures(units=comparison.units_b, outcome_rate=comparison.rate_b),
        difference=comparison.difference,
        ci_low=comparison.ci_low,
        ci_high=comparison.ci_high,
    )


def experiment_public(
    session: Session, experiment: Experiment, *, analyses: bool = True
) -> ExperimentPublic:
    """The experiment with its counts and both analyses (over every unit with a call, and over
    the units with a call whose answers differed; a unit without an outcome counts 0). A
    list leaves the analyses out: they read every call."""
    assert experiment.id is not None
    calls, exposures, pending = store.count_calls(session=session, experiment_id=experiment.id)
    counts = {"calls": calls, "exposures": exposures, "pending": pending}
    if not analyses:
        return ExperimentPublic.model_validate(experiment, update=counts)
    outcomes = {
        o.unit: o.value for o in store.outcomes_of(session=session, experiment_id=experiment.id)
    }
    arms: dict[str, str] = {}
    exposed: set[str] = set()
    for call in store.calls_of(session=session, experiment_id=experiment.id):
        arms.setdefault(call.unit, call.arm)
        if call.differs:
            exposed.add(call.unit)

    def values(arm: str, units: set[str] | None) -> list[float]:
        return [
            outcomes.get(unit, 0.0)
            for unit, its_arm in arms.items()
            if its_arm == arm and (units is None or unit in units)
        ]

    diluted = compare_arms(values("a", None), values("b", None))
    post = compare_arms(values("a", exposed), values("b", exposed))
    return ExperimentPublic.model_validate(
        experiment,
        update={
            **counts,
            "outcomes": len(outcomes),
            "diluted": _analysis(diluted),
            "post_exposure": _analysis(post),
            "extra_units": extra_units(diluted, post),
        },
    )


def _check_judge(body: ExperimentCreate, models: ModelCatalog) -> None:
    if body.differ == "exact" and body.judge_model is not None:
        raise InvalidError('A \'judge_model\' is only for "differ": "judge"; leave it out.')
    if body.differ == "judge" and (
        body.judge_model is None or models.get(body.judge_model) is None
    ):
        known = ", ".join(entry.name for entry in models.models)
        raise InvalidError(
            f'"differ": "judge" needs a \'judge_model\' from the catalog ({known}); '
            f"{body.judge_model!r} is not one."
        )


def _check_versions(session: Session, body: ExperimentCreate, prompt: Prompt) -> None:
    if body.version_a == body.version_b:
        raise InvalidError("'version_a' and 'version_b' must be two different versions.")
    variables = []
    for number in (body.version_a, body.version_b):
        version = prompt_store.get_version(session=session, prompt=prompt, number=number)
        if version is None:
            raise NotFoundError(f"The prompt {prompt.name!r} has no version {number}.")
        variables.append(prompt_store.variables_of(version))
    if set(variables[0]) != set(variables[1]):
        raise InvalidError(
            f"Both versions must take the same variables, since every call is answered by "
            f"both: v{body.version_a} takes {', '.join(variables[0]) or 'none'}, "
            f"v{body.version_b} takes {', '.join(variables[1]) or 'none'}."
        )


class Experiments:
    def __init__(
        self, *, engine: Engine, resolver: ExperimentResolver, models: ModelCatalog
    ) -> None:
        self._engine = engine
        self._resolver = resolver
        self.models = models

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    async def create(self, body: ExperimentCreate, actor: Actor) -> ExperimentPublic:
        def work(session: Session) -> ExperimentPublic:
            prompt = prompt_store.get_prompt(session=session, name=body.prompt)
            if prompt is None or prompt.id is None:
                raise NotFoundError(f"No prompt {body.prompt!r} exists.")
            _may_change(actor, prompt.team, prompt.name)
            _check_versions(session, body, prompt)
            _check_judge(body, self.models)
            # Locks the prompt's row: two starts at once cannot both find none running.
            session.exec(select(Prompt).where(Prompt.id == prompt.id).with_for_update()).one()
            running = [
                e
                for e in store.list_experiments(session=session, prompt=prompt.name)
                if e.status == ExperimentStatus.running.value
            ]
            if running:
                raise ConflictError(
                    f"The prompt {prompt.name!r} already runs experiment {running[0].id}; "
                    "stop it first."
                )
            experiment = Experiment(
                prompt_id=prompt.id,
                prompt=prompt.name,
                team=prompt.team,
                version_a=body.version_a,
                version_b=body.version_b,
                split=body.split,
                differ=body.differ,
                judge_model=body.judge_model,
                budget=body.budget,
                created_by=actor.name,
            )
            session.add(experiment)
            session.flush()
            record_event(
                session=session,
                actor=actor,
                action="experiment.started",
                object_kind="experiment",
                object_id=str(experiment.id),
                details={
                    "prompt": prompt.name,
                    "version_a": body.version_a,
                    "version_b": body.version_b,
                    "split": body.split,
                    "budget": body.budget,
                    "differ": body.differ,
                    "judge_model": body.judge_model,
                },
            )
            session.commit()
            return experiment_public(session, experiment)

        made = await self._db(work)
        self._resolver.changed()
        return made

    async def find(
        self, prompt: str | None, *, offset: int = 0, limit: int = 200
    ) -> list[ExperimentPublic]:
        """The newest first: `offset` skipped, at most `limit`."""

        def work(session: Session) -> list[ExperimentPublic]:
            found = store.list_experiments(
                session=session, prompt=prompt, offset=offset, limit=limit
            )
            return [experiment_public(session, e, analyses=False) for e in found]

        return await self._db(work)

    async def get(self, experiment_id: int) -> ExperimentPublic:
        return await self._db(lambda s: experiment_public(s, _experiment(s, experiment_id)))

    async def stop(self, experiment_id: int, actor: Actor) -> ExperimentPublic:
        def work(session: Session) -> ExperimentPublic:
            experiment = _experiment(session, experiment_id)
            _may_change(actor, experiment.team, experiment.prompt)
            if experiment.status == ExperimentStatus.running.value:
                experiment.status = ExperimentStatus.stopped.value
                experiment.stopped_at, experiment.stopped_by = utcnow(), actor.name
                session.add(experiment)
                record_event(
                    session=session,
                    actor=actor,
                    action="experiment.stopped",
                    object_kind="experiment",
                    object_id=str(experiment_id),
                    details={"prompt": experiment.prompt},
                )
                session.commit()
            return experiment_public(session, experiment)

        stopped = await self._db(work)
        self._resolver.changed()
        return stopped

    async def report(self, experiment_id: int, body: OutcomeIn, actor: Actor) -> OutcomePublic:
        def work(session: Session) -> OutcomePublic:
            experiment = _experiment(session, experiment_id)
            _may_change(actor, experiment.team, experiment.prompt)
            outcome = store.save_outcome(
                session=session,
                experiment_id=experiment_id,
                unit=body.unit,
                value=body.value,
                reported_by=actor.name,
            )
            session.commit()
            return OutcomePublic.model_validate(outcome)

        return await self._db(work)

    async def calls(self, experiment_id: int, *, offset: int, limit: int) -> CallPage:
        def work(session: Session) -> CallPage:
            _experiment(session, experiment_id)
            total, _, _ = store.count_calls(session=session, experiment_id=experiment_id)
            calls = store.calls_of(
                session=session, experiment_id=experiment_id, offset=offset, limit=limit
            )
            return CallPage(
                total=total, calls=[ExperimentCallPublic.model_validate(c) for c in calls]
            )

        return await self._db(work)
