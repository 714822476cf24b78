"""The regression gate at work: binding a prompt to a test set and checks, starting a gate check
when its production is to move to a version that was never production, deciding it once its
two runs are over, and an admin's override. Only prompts are gated for now; the tables name
the target's kind so that agents' versions can be gated the same way.

Anyone signed in reads gates and gate checks. The prompt's team's builders (and its services)
and admins bind, change and remove its gate, as they run it; only admins override.

A check's score is the share of the set's cases that passed every check (an error counts as
not passed). The candidate passes when its score is at least production's less the margin;
the rows that got worse are those that passed on production's version and not on the
candidate. Checks are decided by the runner's loop in every hub process (hub/evaluation/
runner.py), each by one conditional UPDATE, so two processes never both move production.
"""

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from hub.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from hub.core.roles import Permission, Role
from hub.evaluation.run_figures import compare
from hub.evaluation.runs import EvalRuns
from hub.gateway.model_catalog import ModelCatalog
from hub.gateway.prompt_calls import PromptResolver
from hub.models.actor import Actor, ActorKind
from hub.models.eval_gate import (
    EvalGate,
    EvalGateCheck,
    GateCheckPublic,
    GatePublic,
    GateSet,
    GateStatus,
)
from hub.models.evaluation import Check, EvalRun, EvalSet, ResultStatus, RunCreate, RunStatus
from hub.models.prompt import Prompt
from hub.models.service import utcnow
from hub.services import eval_gates as store
from hub.services import eval_runs as runs_store
from hub.services import eval_sets as sets_store
from hub.services import prompts as prompt_store
from hub.services.audit import record_event

__all__ = ["GATE_CONCURRENCY", "EvalGates", "check_public", "decide_check", "start_check"]

T = TypeVar("T")
# Cases each of a gate check's runs answers at once.
GATE_CONCURRENCY = 4
# Scores are compared in counts of cases; this keeps a margin such as 0.1 of 10 cases exact.
_EPSILON = 1e-9


def _prompt(session: Session, name: str) -> Prompt:
    prompt = prompt_store.get_prompt(session=session, name=name)
    if prompt is None:
        raise NotFoundError(f"No prompt {name!r} exists.")
    return prompt


def _may_bind(actor: Actor, prompt: Prompt) -> None:
    actor.require(Permission.build)
    if not actor.can_manage(prompt.team):
        raise PermissionDeniedError(
            f"Only team {prompt.team!r}'s builders or an admin can change the gate of the "
            f"prompt {prompt.name!r}."
        )


def _record(
    session: Session, actor: Actor | None, action: str, name: str, details: dict[str, Any]
) -> None:
    record_event(
        session=session,
        actor=actor,
        action=action,
        object_kind="prompt",
        object_id=name,
        details=details,
    )


def _gate_public(session: Session, gate: EvalGate) -> GatePublic:
    names = runs_store.set_names(session=session, set_ids={gate.set_id})
    return GatePublic(
        target_kind=gate.target_kind,
        target=gate.target,
        set=names.get(gate.set_id, "?"),
        checks=[Check.model_validate(check) for check in gate.checks],
        margin=gate.margin,
        set_by=gate.set_by,
        set_at=gate.set_at,
    )


def check_public(session: Session, check: EvalGateCheck) -> GateCheckPublic:
    assert check.id is not None
    runs = [
        run
        for run_id in (check.candidate_run_id, check.baseline_run_id)
        if (run := runs_store.get_run(session=session, run_id=run_id)) is not None
    ]
    progress = runs_store.progress_of(session=session, runs=runs)
    names = runs_store.set_names(session=session, set_ids={check.set_id})
    return GateCheckPublic(
        **check.model_dump(
            exclude={
                "id",
                "set_id",
                "status",
                "candidate_run_id",
                "baseline_run_id",
                "team",
                "requested_by_kind",
                "requested_by_id",
            }
        ),
        id=check.id,
        set=names.get(check.set_id, "?"),
        status=GateStatus(check.status),
        candidate_run=check.candidate_run_id,
        baseline_run=check.baseline_run_id,
        candidate_progress=progress[check.candidate_run_id],
        baseline_progress=progress[check.baseline_run_id],
    )


def start_check(
    session: Session, *, runs: EvalRuns, prompt: Prompt, number: int, actor: Actor
) -> EvalGateCheck | None:
    """When `prompt` is gated and version `number` has never been production: a gate check
    with its two runs (committed), or the one already waiting for this version. None when the
    change of production is not gated: no gate, or a version that was production before (a
    roll back, or a return to it), or no production version to compare with."""
    gate = store.get_gate(session=session, target_kind="prompt", target=prompt.name)
    baseline = prompt.production_version
    if (
        gate is None
        or baseline is None
        or prompt_store.was_production(session=session, prompt=prompt, number=number)
    ):
        return None
    waiting = store.running_check(
        session=session, target_kind="prompt", target=prompt.name, candidate=number
    )
    if waiting is not None:
        return waiting
    test_set = session.get(EvalSet, gate.set_id)
    assert test_set is not None and test_set.id is not None
    body = RunCreate(
        set=test_set.name,
        set_version=test_set.latest_version or None,
        prompt=prompt.name,
        version=number,
        checks=[Check.model_validate(check) for check in gate.checks],
        concurrency=GATE_CONCURRENCY,
    )
    candidate = runs.queue(session, body, actor)
    production = runs.queue(session, body.model_copy(update={"version": baseline}), actor)
    assert candidate.id is not None and production.id is not None
    check = EvalGateCheck(
        target_kind="prompt",
        target=prompt.name,
        candidate_version=number,
        baseline_version=baseline,
        set_id=test_set.id,
        set_version=candidate.set_version,
        candidate_run_id=candidate.id,
        baseline_run_id=production.id,
        margin=gate.margin,
        cases=candidate.cases,
        team=prompt.team,
        requested_by_kind=actor.kind,
        requested_by_id=actor.id,
        requested_by=actor.name,
    )
    session.add(check)
    session.flush()
    details = {
        "gate_check": check.id,
        "candidate_version": number,
        "baseline_version": baseline,
        "set": test_set.name,
        "set_version": candidate.set_version,
    }
    _record(session, actor, "prompt.gate_check_started", prompt.name, details)
    session.commit()
    session.refresh(check)
    return check


def _requester(check: EvalGateCheck) -> Actor:
    """Who asked for the change, as the audit log names them."""
    kind: ActorKind = "service" if check.requested_by_kind == "service" else "user"
    return Actor(
        kind=kind,
        id=check.requested_by_id,
        name=check.requested_by,
        team=check.team,
        role=Role.builder,
    )


def _fail(session: Session, check: EvalGateCheck, message: str) -> None:
    assert check.id is not None
    if store.settle(
        session=session,
        check_id=check.id,
        before=(GateStatus.running,),
        status=GateStatus.failed,
        values={"message": message[:2000]},
    ):
        details = {"gate_check": check.id, "candidate_version": check.candidate_version}
        _record(session, None, "prompt.gate_failed", check.target, {**details, "why": message})
    session.commit()


def _over(run: EvalRun | None) -> bool:
    return run is None or run.status not in runs_store.ACTIVE


def decide_check(session: Session, check_id: int) -> bool:
    """Decide the gate check once both its runs are over (nothing while one still runs); True
    when this moved production."""
    check = store.get_check(session=session, check_id=check_id)
    if check is None or check.status != GateStatus.running.value:
        return False
    candidate = runs_store.get_run(session=session, run_id=check.candidate_run_id)
    baseline = runs_store.get_run(session=session, run_id=check.baseline_run_id)
    if not (_over(candidate) and _over(baseline)):
        return False
    prompt = prompt_store.get_prompt(session=session, name=check.target)
    for which, run in (("candidate's", candidate), ("production's", baseline)):
        if run is None or run.status != RunStatus.finished.value:
            why = run.message if run is not None and run.message else "it was stopped"
            status = run.status if run is not None else "gone"
            _fail(
                session,
                check,
                f"The {which} run is {status} ({why}), so nothing was measured and production "
                "stays. Ask for the change again, or an admin may override.",
            )
            return False
    if prompt is None:
        _fail(session, check, f"The prompt {check.target!r} is gone.")
        return False
    assert candidate is not None and baseline is not None
    return _verdict(session, check, prompt, candidate, baseline)


def _verdict(
    session: Session, check: EvalGateCheck, prompt: Prompt, candidate: EvalRun, baseline: EvalRun
) -> bool:
    assert check.id is not None and candidate.id is not None and baseline.id is not None
    before = runs_store.results_with_cases(session=session, run_id=baseline.id)
    after = runs_store.results_with_cases(session=session, run_id=candidate.id)
    cases = candidate.cases
    passed_before = sum(1 for r, _ in before if r.status == ResultStatus.done.value and r.passed)
    passed_after = sum(1 for r, _ in after if r.status == ResultStatus.done.value and r.passed)
    worse = [row.position for row in compare(baseline.id, candidate.id, before, after, cases).worse]
    scores = {
        "candidate_score": passed_after / cases if cases else None,
        "baseline_score": passed_before / cases if cases else None,
        "worse": worse,
    }
    figures = (
        f"v{check.candidate_version} passed {passed_after} of {cases} cases, production's "
        f"v{check.baseline_version} {passed_before}; the margin is {check.margin:g} of the cases"
    )
    if not cases:
        message = "The test set's version has no cases: there is nothing to compare, so it passes."
        passes = True
    elif passed_after + check.margin * cases + _EPSILON >= passed_before:
        message = f"Passed: {figures}."
        passes = True
    else:
        rows = ", ".join(str(position) for position in worse) or "none"
        message = f"Refused: {figures}. Rows that got worse: {rows}."
        passes = False
    if prompt.production_version != check.baseline_version:
        message += (
            f" Production moved to v{prompt.production_version} meanwhile; the candidate was "
            f"compared with v{check.baseline_version}, as measured."
        )
    status = GateStatus.passed if passes else GateStatus.refused
    if not store.settle(
        session=session,
        check_id=check.id,
        before=(GateStatus.running,),
        status=status,
        values={**scores, "message": message[:2000]},
    ):
        session.rollback()
        return False
    details = {
        "gate_check": check.id,
        "candidate_version": check.candidate_version,
        "baseline_version": check.baseline_version,
        "candidate_score": scores["candidate_score"],
        "baseline_score": scores["baseline_score"],
        "margin": check.margin,
        "worse_rows": worse,
    }
    action = "prompt.gate_passed" if passes else "prompt.gate_refused"
    _record(session, None, action, prompt.name, details)
    if not passes or prompt.production_version == check.candidate_version:
        session.commit()
        return False
    prompt_store.set_production(
        session=session,
        prompt=prompt,
        version=check.candidate_version,
        actor=_requester(check),
        gate_check=check.id,
    )
    return True


class EvalGates:
    def __init__(self, *, engine: Engine, models: ModelCatalog, resolver: PromptResolver) -> None:
        self._engine = engine
        self._runs = EvalRuns(engine=engine, models=models)
        self._resolver = resolver

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    async def get(self, name: str) -> GatePublic | None:
        """The prompt's gate, None when it has none."""

        def work(session: Session) -> GatePublic | None:
            _prompt(session, name)
            gate = store.get_gate(session=session, target_kind="prompt", target=name)
            return _gate_public(session, gate) if gate is not None else None

        return await self._db(work)

    async def bind(self, name: str, body: GateSet, actor: Actor) -> GatePublic:
        """Bind the prompt to a test set and checks (or change its gate)."""

        def work(session: Session) -> GatePublic:
            prompt = _prompt(session, name)
            _may_bind(actor, prompt)
            plan = RunCreate(set=body.test_set, prompt=name, checks=body.checks)
            # The refusal a run of these checks would get (an unknown set, a bad check).
            self._runs.check_plan(session, plan, actor)
            test_set = sets_store.get_set(session=session, name=body.test_set)
            assert test_set is not None and test_set.id is not None
            gate = store.get_gate(session=session, target_kind="prompt", target=name)
            if gate is None:
                gate = EvalGate(target_kind="prompt", target=name, set_id=test_set.id, set_by="")
            gate.set_id = test_set.id
            gate.checks = [check.model_dump(mode="json") for check in body.checks]
            gate.margin = body.margin
            gate.set_by = actor.name
            gate.set_at = utcnow()
            session.add(gate)
            details = {
                "set": test_set.name,
                "checks": [check.label for check in body.checks],
                "margin": body.margin,
            }
            _record(session, actor, "prompt.gate_set", name, details)
            try:
                session.commit()
            except IntegrityError as exc:  # bound at the same moment by someone else
                raise ConflictError(
                    f"The gate of {name!r} was set at the same moment; look at it and try again."
                ) from exc
            session.refresh(gate)
            return _gate_public(session, gate)

        return await self._db(work)

    async def remove(self, name: str, actor: Actor) -> None:
        """Production moves at once from now on; checks already started are still decided."""

        def work(session: Session) -> None:
            prompt = _prompt(session, name)
            _may_bind(actor, prompt)
            gate = store.get_gate(session=session, target_kind="prompt", target=name)
            if gate is None:
                raise NotFoundError(f"The prompt {name!r} has no gate.")
            session.delete(gate)
            _record(session, actor, "prompt.gate_removed", name, {})
            session.commit()

        await self._db(work)

    async def checks(self, name: str) -> list[GateCheckPublic]:
        """The prompt's last 50 gate checks, newest first."""

        def work(session: Session) -> list[GateCheckPublic]:
            _prompt(session, name)
            found = store.list_checks(session=session, target_kind="prompt", target=name)
            return [check_public(session, check) for check in found]

        return await self._db(work)

    async def check(self, name: str, check_id: int) -> GateCheckPublic:
        return await self._db(lambda s: check_public(s, _check(s, name, check_id)))

    async def override(
        self, name: str, check_id: int, reason: str, actor: Actor
    ) -> GateCheckPublic:
        """An admin makes the refused (or failed) candidate production, saying why."""

        def work(session: Session) -> GateCheckPublic:
            check = _check(session, name, check_id)
            if not actor.is_admin:
                raise PermissionDeniedError(
                    f"Only an admin can override a gate check; {actor.name!r} is a "
                    f"{actor.role.value}. Improve v{check.candidate_version} and ask again, "
                    "or ask an admin."
                )
            overridable = (GateStatus.refused, GateStatus.failed)
            if check.status not in overridable or not store.settle(
                session=session,
                check_id=check_id,
                before=overridable,
                status=GateStatus.overridden,
                values={"decided_by": actor.name, "override_reason": reason},
            ):
                session.rollback()
                raise ConflictError(
                    f"Gate check {check_id} is {check.status}; only a refused or failed check "
                    "can be overridden."
                )
            details = {
                "gate_check": check_id,
                "candidate_version": check.candidate_version,
                "baseline_version": check.baseline_version,
                "was": check.status,
                "reason": reason,
            }
            _record(session, actor, "prompt.gate_overridden", name, details)
            prompt = _prompt(session, name)
            if prompt.production_version == check.candidate_version:
                session.commit()
            else:
                prompt_store.set_production(
                    session=session,
                    prompt=prompt,
                    version=check.candidate_version,
                    actor=actor,
                    gate_check=check_id,
                )
            session.refresh(check)
            return check_public(session, check)

        try:
            return await self._db(work)
        finally:
            self._resolver.production_changed()


def _check(session: Session, name: str, check_id: int) -> EvalGateCheck:
    check = store.get_check(session=session, check_id=check_id)
    if check is None or check.target_kind != "prompt" or check.target != name:
        raise NotFoundError(f"The prompt {name!r} has no gate check {check_id}.")
    return check
