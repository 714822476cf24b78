"""Gates and gate checks in the database.

A gate check is decided by one conditional UPDATE on its status (`settle`): when two hub
processes decide it at once, only the one whose UPDATE moved it from `running` goes on to
move production; the other's changes nothing.
"""

from typing import Any

from sqlmodel import Session, col, delete, select, update

from hub.models.eval_gate import EvalGate, EvalGateCheck, GateStatus
from hub.models.service import utcnow

__all__ = [
    "forget_target",
    "get_check",
    "get_gate",
    "list_checks",
    "running_check",
    "running_check_ids",
    "settle",
]


def get_gate(*, session: Session, target_kind: str, target: str) -> EvalGate | None:
    query = select(EvalGate).where(EvalGate.target_kind == target_kind, EvalGate.target == target)
    return session.exec(query).first()


def forget_target(*, session: Session, target_kind: str, target: str) -> None:
    """Delete the target's gate and gate checks, when it is deleted (not committed): another
    target of that name later starts with none."""
    session.exec(
        delete(EvalGate).where(
            col(EvalGate.target_kind) == target_kind, col(EvalGate.target) == target
        )
    )
    session.exec(
        delete(EvalGateCheck).where(
            col(EvalGateCheck.target_kind) == target_kind, col(EvalGateCheck.target) == target
        )
    )


def get_check(*, session: Session, check_id: int) -> EvalGateCheck | None:
    return session.get(EvalGateCheck, check_id)


def list_checks(
    *, session: Session, target_kind: str, target: str, offset: int = 0, limit: int | None = 50
) -> list[EvalGateCheck]:
    """The target's gate checks, newest first (all of them with `limit` None)."""
    query = (
        select(EvalGateCheck)
        .where(EvalGateCheck.target_kind == target_kind, EvalGateCheck.target == target)
        .order_by(col(EvalGateCheck.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.exec(query).all())


def running_check(
    *, session: Session, target_kind: str, target: str, candidate: int
) -> EvalGateCheck | None:
    """A check of this candidate still waiting for its runs, if any."""
    query = select(EvalGateCheck).where(
        EvalGateCheck.target_kind == target_kind,
        EvalGateCheck.target == target,
        EvalGateCheck.candidate_version == candidate,
        EvalGateCheck.status == GateStatus.running.value,
    )
    return session.exec(query).first()


def running_check_ids(*, session: Session) -> list[int]:
    query = (
        select(EvalGateCheck.id)
        .where(EvalGateCheck.status == GateStatus.running.value)
        .order_by(col(EvalGateCheck.id))
    )
    return [check_id for check_id in session.exec(query).all() if check_id is not None]


def settle(
    *,
    session: Session,
    check_id: int,
    before: tuple[GateStatus, ...],
    status: GateStatus,
    values: dict[str, Any],
) -> bool:
    """Move the check from one of `before` to `status` with `values`, unless someone else
    moved it first; not committed (the caller commits it with what it decides)."""
    moved = session.exec(
        update(EvalGateCheck)
        .where(
            col(EvalGateCheck.id) == check_id,
            col(EvalGateCheck.status).in_([s.value for s in before]),
        )
        .values(status=status.value, decided_at=utcnow(), **values)
    )
    return moved.rowcount == 1
