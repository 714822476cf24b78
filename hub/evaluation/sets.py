"""Test sets at work: who may upload what, the file read into cases, and the reads of the
list, a set's page and a version's cases. Parsing and database work run in worker threads.

Anyone signed in (a person or a service) reads every test set; builders make test sets for
their own teams; only the owning team's builders and admins add versions (403 for anyone
else). Each upload is read whole before anything is written, and written in one
transaction, so a refused file leaves nothing behind.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from hub.core.errors import ConflictError, InvalidError, NotFoundError, PermissionDeniedError
from hub.core.roles import Permission
from hub.evaluation.case_files import read_cases
from hub.models.actor import Actor
from hub.models.evaluation import (
    EvalCasePage,
    EvalCasePublic,
    EvalSet,
    EvalSetCreate,
    EvalSetListItem,
    EvalSetPublic,
    EvalSetVersion,
    EvalSetVersionCreate,
    EvalSetVersionPublic,
)
from hub.services import eval_sets as store

__all__ = ["MAX_CASES_PER_PAGE", "EvalSetLibrary", "Upload"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
MAX_CASES_PER_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Upload:
    """A form with one file: its text fields, and the file's name and bytes."""

    fields: dict[str, str]
    filename: str
    data: bytes


def _checked(model: type[M], fields: dict[str, Any]) -> M:
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in error.errors()
        )
        raise InvalidError(f"Please fix: {problems}") from error


def _set(session: Session, name: str) -> EvalSet:
    eval_set = store.get_set(session=session, name=name)
    if eval_set is None:
        raise NotFoundError(f"No test set {name!r} exists.")
    return eval_set


def _version(session: Session, eval_set: EvalSet, number: int) -> EvalSetVersion:
    version = store.get_version(session=session, eval_set=eval_set, number=number)
    if version is None:
        raise NotFoundError(f"The test set {eval_set.name!r} has no version {number}.")
    return version


class EvalSetLibrary:
    def __init__(self, *, engine: Engine) -> None:
        self._engine = engine

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    async def create(self, upload: Upload, actor: Actor) -> EvalSetPublic:
        """A test set for one of the caller's teams, with the file as its version 1."""
        set_in = _checked(
            EvalSetCreate, {**upload.fields, "team": upload.fields.get("team") or None}
        )
        actor.require(Permission.build)
        team = set_in.team or actor.team
        if not actor.can_manage(team):
            raise PermissionDeniedError(
                f"{actor.name!r} is not in team {team!r}; make the test set for one of your teams."
            )
        taken = f"A test set named {set_in.name!r} exists; pick another name."

        def work(session: Session) -> EvalSetPublic:
            if store.get_set(session=session, name=set_in.name) is not None:
                raise ConflictError(taken)
            cases = read_cases(upload.data, upload.filename)
            try:
                eval_set = store.create_set(
                    session=session, set_in=set_in, team=team, cases=cases, actor=actor
                )
            except IntegrityError as exc:  # made at the same moment by someone else
                raise ConflictError(taken) from exc
            return store.to_public(session=session, eval_set=eval_set)

        return await self._db(work)

    async def add_version(self, name: str, upload: Upload, actor: Actor) -> EvalSetVersionPublic:
        """The file as the set's next version."""
        version_in = _checked(EvalSetVersionCreate, upload.fields)

        def work(session: Session) -> EvalSetVersionPublic:
            eval_set = _set(session, name)
            actor.require(Permission.build)
            if not actor.can_manage(eval_set.team):
                raise PermissionDeniedError(
                    f"Only team {eval_set.team!r}'s builders or an admin can add versions to "
                    f"the test set {name!r}."
                )
            cases = read_cases(upload.data, upload.filename)
            version = store.add_version(
                session=session, eval_set=eval_set, cases=cases, note=version_in.note, actor=actor
            )
            return EvalSetVersionPublic.model_validate(version, from_attributes=True)

        return await self._db(work)

    async def find(self, text: str | None, team: str | None) -> list[EvalSetListItem]:
        return await self._db(lambda s: store.list_items(session=s, text=text, team=team))

    async def get(self, name: str) -> EvalSetPublic:
        """The set with its versions, newest first."""
        return await self._db(lambda s: store.to_public(session=s, eval_set=_set(s, name)))

    async def cases(self, name: str, number: int, offset: int, limit: int) -> EvalCasePage:
        """Version `number`'s cases by position, `offset` skipped, at most `limit`."""

        def work(session: Session) -> EvalCasePage:
            version = _version(session, _set(session, name), number)
            found = store.case_page(session=session, version=version, offset=offset, limit=limit)
            return EvalCasePage(
                name=name,
                version=number,
                total=version.cases,
                offset=offset,
                limit=limit,
                cases=[EvalCasePublic.model_validate(c, from_attributes=True) for c in found],
            )

        return await self._db(work)
