"""The regression gate at work: binding a prompt or an agent to a test set and checks, starting
a gate check when its production is to move to a new version (a prompt's version that was never
production, an agent's draft just published), deciding it once its two runs are over, and an
admin's override. hub/evaluation/gate_targets.py holds what differs between the two kinds.

Anyone signed in reads a prompt's gate and gate checks (an agent's: whoever may read the
agent). Those who may run the prompt or agent (a prompt's team's builders and services, an
agent's owner) and admins bind, change and remove its gate; only admins override.

A check's score is the share of the set's cases that passed every check (an error counts as
not passed). The candidate passes when its score is at least production's less the margin;
the rows that got worse are those that passed on production's version and not on the
candidate. Checks are decided by the runner's loop in every hub process (hub/evaluation/
runner.py), each by one conditional UPDATE, so two processes never both move production.
"""

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import anyio
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from hub.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from hub.core.roles import Role
from hub.evaluation.gate_targets import (
    GateTarget,
    find_target,
    may_bind,
    move_production,
    production_word,
    target_of,
)
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
from hub.models.evaluation import (
    Check,
    EvalRun,
    EvalSet,
    ResultStatus,
    RunCreate,
    RunStatus,
    TargetKind,
)
from hub.models.service import utcnow
from hub.services import eval_gates as store
from hub.services import eval_runs as runs_store
from hub.services import eval_sets as sets_store
from hub.services.audit import record_event

__all__ = [
    "GATE_CONCURRENCY",
    "EvalGates",
    "check_public",
    "decide_check",
    "held_back",
    "held_versions",
    "start_check",
]

T = TypeVar("T")
# Cases each of a gate check's runs answers at once.
GATE_CONCURRENCY = 4
# Scores are compared in counts of cases; this keeps a margin such as 0.1 of 10 cases exact.
_EPSILON = 1e-9


def _record(
    session: Session,
    actor: Actor | None,
    kind: str,
    action: str,
    name: str,
    details: dict[str, Any],
) -> None:
    """`action` ("gate_set", ...) as the kind's own ("prompt.gate_set", "agent.gate_set")."""
    record_event(
        session=session,
        actor=actor,
        action=f"{kind}.{action}",
        object_kind=kind,
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
    session: Session, *, runs: EvalRuns, target: GateTarget, number: int, actor: Actor
) -> EvalGateCheck | None:
    """When `target` is gated and has a production version: a gate check of version `number`
    with its two runs (committed with what the session holds), or the one already waiting for
    this version. None when the change is not gated: no gate, or no production version to
    compare with. The caller tells a gated change from one that is not (a prompt's version that
    was production before, a restored agent version)."""
    gate = store.get_gate(session=session, target_kind=target.kind, target=target.name)
    baseline = target.production
    if gate is None or baseline is None:
        return None
    waiting = store.running_check(
        session=session, target_kind=target.kind, target=target.name, candidate=number
    )
    if waiting is not None:
        return waiting
    test_set = session.get(EvalSet, gate.set_id)
    assert test_set is not None and test_set.id is not None
    body = RunCreate.model_validate(
        {
            "set": test_set.name,
            "set_version": test_set.latest_version or None,
            target.kind: target.name,
            "version": number,
            "checks": gate.checks,
            "concurrency": GATE_CONCURRENCY,
        }
    )
    candidate = runs.queue(session, body, actor)
    production = runs.queue(session, body.model_copy(update={"version": baseline}), actor)
    assert candidate.id is not None and production.id is not None
    check = EvalGateCheck(
        target_kind=target.kind,
        target=target.name,
        candidate_version=number,
        baseline_version=baseline,
        set_id=test_set.id,
        set_version=candidate.set_version,
        candidate_run_id=candidate.id,
        baseline_run_id=production.id,
        margin=gate.margin,
        cases=candidate.cases,
        team=target.team,
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
    _record(session, actor, target.kind, "gate_check_started", target.name, details)
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
        why = {**details, "why": message}
        _record(session, None, check.target_kind, "gate_failed", check.target, why)
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
    target = find_target(session, check.target_kind, check.target)
    production = production_word(check.target_kind)
    theirs = f"{production}'s".removeprefix("the ")
    for which, run in (("candidate's", candidate), (theirs, baseline)):
        if run is None or run.status != RunStatus.finished.value:
            why = run.message if run is not None and run.message else "it was stopped"
            status = run.status if run is not None else "gone"
            _fail(
                session,
                check,
                f"The {which} run is {status} ({why}), so nothing was measured and "
                f"{production} stays. Ask for the change again, or an admin may override.",
            )
            return False
    if target is None:
        _fail(session, check, f"The {check.target_kind} {check.target!r} is gone.")
        return False
    assert candidate is not None and baseline is not None
    return _verdict(session, check, target, candidate, baseline)


def _verdict(
    session: Session,
    check: EvalGateCheck,
    target: GateTarget,
    candidate: EvalRun,
    baseline: EvalRun,
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
    production = production_word(target.kind)
    figures = (
        f"v{check.candidate_version} passed {passed_after} of {cases} cases, {production}'s "
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
    if target.production != check.baseline_version:
        message += (
            f" {production.capitalize()} moved to v{target.production} meanwhile; the candidate "
            f"was compared with v{check.baseline_version}, as measured."
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
    action = "gate_passed" if passes else "gate_refused"
    _record(session, None, target.kind, action, target.name, details)
    if not passes or target.production == check.candidate_version:
        session.commit()
        return False
    move_production(session, target, check.candidate_version, _requester(check), check.id)
    return True


def held_back(checks: Iterable[EvalGateCheck | GateCheckPublic]) -> dict[int, int]:
    """The versions the gate held back, those of `checks` (newest first) none of which passed
    or was overridden, each with its newest check."""
    held: dict[int, int] = {}
    let_through: set[int] = set()
    for check in checks:
        assert check.id is not None
        if check.status in (GateStatus.passed, GateStatus.overridden):
            let_through.add(check.candidate_version)
        held.setdefault(check.candidate_version, check.id)
    return {number: check for number, check in held.items() if number not in let_through}


def held_versions(session: Session, kind: str, name: str) -> dict[int, int]:
    """The target's versions the gate held back (never production, as far as the gate knows)."""
    return held_back(store.list_checks(session=session, target_kind=kind, target=name, limit=None))


class EvalGates:
    """The gates of prompts and agents; each call names the kind of its target."""

    def __init__(self, *, engine: Engine, models: ModelCatalog, resolver: PromptResolver) -> None:
        self._engine = engine
        self._runs = EvalRuns(engine=engine, models=models)
        self._resolver = resolver

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    async def get(self, kind: TargetKind, name: str, actor: Actor) -> GatePublic | None:
        """The target's gate, None when it has none."""

        def work(session: Session) -> GatePublic | None:
            target_of(session, kind, name, actor)
            gate = store.get_gate(session=session, target_kind=kind, target=name)
            return _gate_public(session, gate) if gate is not None else None

        return await self._db(work)

    async def bind(self, kind: TargetKind, name: str, body: GateSet, actor: Actor) -> GatePublic:
        """Bind the target to a test set and checks (or change its gate)."""

        def work(session: Session) -> GatePublic:
            target = target_of(session, kind, name, actor)
            may_bind(actor, target)
            plan = RunCreate.model_validate(
                {"set": body.test_set, kind: name, "checks": body.checks}
            )
            # The refusal a run of these checks would get (an unknown set, a bad check).
            self._runs.check_plan(session, plan, actor)
            test_set = sets_store.get_set(session=session, name=body.test_set)
            assert test_set is not None and test_set.id is not None
            gate = store.get_gate(session=session, target_kind=kind, target=name)
            if gate is None:
                gate = EvalGate(target_kind=kind, target=name, set_id=test_set.id, set_by="")
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
            _record(session, actor, kind, "gate_set", name, details)
            try:
                session.commit()
            except IntegrityError as exc:  # bound at the same moment by someone else
                raise ConflictError(
                    f"The gate of {name!r} was set at the same moment; look at it and try again."
                ) from exc
            session.refresh(gate)
            return _gate_public(session, gate)

        return await self._db(work)

    async def remove(self, kind: TargetKind, name: str, actor: Actor) -> None:
        """Production moves at once from now on; checks already started are still decided."""

        def work(session: Session) -> None:
            target = target_of(session, kind, name, actor)
            may_bind(actor, target)
            gate = store.get_gate(session=session, target_kind=kind, target=name)
            if gate is None:
                raise NotFoundError(f"The {kind} {name!r} has no gate.")
            session.delete(gate)
            _record(session, actor, kind, "gate_removed", name, {})
            session.commit()

        await self._db(work)

    async def checks(
        self, kind: TargetKind, name: str, actor: Actor, *, offset: int = 0, limit: int = 50
    ) -> list[GateCheckPublic]:
        """The target's gate checks, newest first: `offset` skipped, at most `limit`."""

        def work(session: Session) -> list[GateCheckPublic]:
            target_of(session, kind, name, actor)
            found = store.list_checks(
                session=session, target_kind=kind, target=name, offset=offset, limit=limit
            )
            return [check_public(session, check) for check in found]

        return await self._db(work)

    async def check(
        self, kind: TargetKind, name: str, check_id: int, actor: Actor
    ) -> GateCheckPublic:
        return await self._db(lambda s: check_public(s, _check(s, kind, name, check_id, actor)))

    async def override(
        self, kind: TargetKind, name: str, check_id: int, reason: str, actor: Actor
    ) -> GateCheckPublic:
        """An admin makes the refused (or failed) candidate production, saying why."""

        def work(session: Session) -> GateCheckPublic:
            check = _check(session, kind, name, check_id, actor)
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
            _record(session, actor, kind, "gate_overridden", name, details)
            target = target_of(session, kind, name)
            if target.production == check.candidate_version:
                session.commit()
            else:
                move_production(session, target, check.candidate_version, actor, check_id)
            session.refresh(check)
            return check_public(session, check)

        try:
            return await self._db(work)
        finally:
            self._resolver.production_changed()


def _check(
    session: Session, kind: TargetKind, name: str, check_id: int, actor: Actor
) -> EvalGateCheck:
    target_of(session, kind, name, actor)
    check = store.get_check(session=session, check_id=check_id)
    if check is None or check.target_kind != kind or check.target != name:
        raise NotFoundError(f"The {kind} {name!r} has no gate check {check_id}.")
    return check
