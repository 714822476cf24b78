"""Test sets in the database: a set with its first version, versions numbered under a lock,
every case of a version written in the same transaction as the version (so a refused file
leaves nothing behind), and the audit log's `eval_set.*` events.

Anyone signed in reads every test set; its team's builders and admins add versions
(`can_manage`, checked in hub/evaluation/sets.py).
"""

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, or_, select

from hub.evaluation.case_files import CaseFile
from hub.models.actor import Actor
from hub.models.evaluation import (
    EvalCase,
    EvalSet,
    EvalSetCreate,
    EvalSetListItem,
    EvalSetPublic,
    EvalSetVersion,
    EvalSetVersionPublic,
)
from hub.services.audit import record_event

__all__ = [
    "add_version",
    "case_page",
    "create_set",
    "get_set",
    "get_version",
    "list_items",
    "list_versions",
    "to_public",
]


def get_set(*, session: Session, name: str) -> EvalSet | None:
    return session.exec(select(EvalSet).where(EvalSet.name == name)).first()


def get_version(*, session: Session, eval_set: EvalSet, number: int) -> EvalSetVersion | None:
    query = select(EvalSetVersion).where(
        EvalSetVersion.set_id == eval_set.id, EvalSetVersion.number == number
    )
    return session.exec(query).first()


def list_versions(*, session: Session, eval_set: EvalSet) -> list[EvalSetVersion]:
    query = (
        select(EvalSetVersion)
        .where(EvalSetVersion.set_id == eval_set.id)
        .order_by(col(EvalSetVersion.number).desc())
    )
    return list(session.exec(query).all())


def _record(
    session: Session, actor: Actor, action: str, eval_set: EvalSet, details: dict[str, Any]
) -> None:
    record_event(
        session=session,
        actor=actor,
        action=action,
        object_kind="eval_set",
        object_id=eval_set.name,
        details=details,
    )


def _write_version(
    session: Session, eval_set: EvalSet, number: int, cases: CaseFile, note: str, actor: Actor
) -> EvalSetVersion:
    """The version and all its cases, added to the session's transaction (not committed)."""
    assert eval_set.id is not None
    version = EvalSetVersion(
        set_id=eval_set.id,
        number=number,
        cases=len(cases.cases),
        variables=cases.variables,
        filename=cases.filename,
        note=note,
        created_by=actor.name,
    )
    session.add(version)
    session.flush()
    rows = [
        {
            "version_id": version.id,
            "position": position,
            "variables": case.variables,
            "expected": case.expected,
            "tags": case.tags,
        }
        for position, case in enumerate(cases.cases, start=1)
    ]
    # One multi-row insert: thousands of cases, without an ORM object each.
    session.connection().execute(sa.insert(EvalCase), rows)
    eval_set.latest_version = number
    session.add(eval_set)
    return version


def create_set(
    *, session: Session, set_in: EvalSetCreate, team: str, cases: CaseFile, actor: Actor
) -> EvalSet:
    """The test set with `cases` as its version 1."""
    eval_set = EvalSet(
        name=set_in.name, team=team, description=set_in.description, created_by=actor.name
    )
    session.add(eval_set)
    session.flush()
    _write_version(session, eval_set, 1, cases, "", actor)
    details = {"team": team, "version": 1, "cases": len(cases.cases), "filename": cases.filename}
    _record(session, actor, "eval_set.created", eval_set, details)
    session.commit()
    session.refresh(eval_set)
    return eval_set


def add_version(
    *, session: Session, eval_set: EvalSet, cases: CaseFile, note: str, actor: Actor
) -> EvalSetVersion:
    """`cases` as the set's next version."""
    # Lock the set's row (PostgreSQL) so two uploads cannot take the same number.
    locked = session.exec(select(EvalSet).where(EvalSet.id == eval_set.id).with_for_update()).one()
    version = _write_version(session, locked, locked.latest_version + 1, cases, note, actor)
    details = {"version": version.number, "cases": version.cases, "filename": version.filename}
    _record(session, actor, "eval_set.version_added", locked, details)
    session.commit()
    session.refresh(version)
    return version


def case_page(
    *, session: Session, version: EvalSetVersion, offset: int, limit: int
) -> list[EvalCase]:
    query = (
        select(EvalCase)
        .where(EvalCase.version_id == version.id)
        .order_by(col(EvalCase.position))
        .offset(offset)
        .limit(limit)
    )
    return list(session.exec(query).all())


def to_public(*, session: Session, eval_set: EvalSet) -> EvalSetPublic:
    versions = list_versions(session=session, eval_set=eval_set)
    return EvalSetPublic(
        **eval_set.model_dump(exclude={"id"}),
        versions=[EvalSetVersionPublic.model_validate(v, from_attributes=True) for v in versions],
    )


def list_items(*, session: Session, text: str | None, team: str | None) -> list[EvalSetListItem]:
    """Every test set with its latest version's number of cases, searched by each word of
    `text` in its name and description."""
    query = (
        select(EvalSet, EvalSetVersion.cases)
        .join(
            EvalSetVersion,
            (col(EvalSetVersion.set_id) == EvalSet.id)
            & (col(EvalSetVersion.number) == EvalSet.latest_version),
        )
        .order_by(col(EvalSet.name))
    )
    if team:
        query = query.where(EvalSet.team == team)
    for word in (text or "").lower().split():
        query = query.where(
            or_(
                func.lower(EvalSet.name).contains(word, autoescape=True),
                func.lower(EvalSet.description).contains(word, autoescape=True),
            )
        )
    return [
        EvalSetListItem(**eval_set.model_dump(exclude={"id", "created_by"}), cases=cases)
        for eval_set, cases in session.exec(query).all()
    ]
