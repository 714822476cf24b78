"""Test sets written straight into the hub's database, for tests of runs (uploading them
through the API is tested on its own)."""

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from hub.core.db import get_engine, migrate
from hub.models.evaluation import EvalCase, EvalSet, EvalSetVersion

__all__ = ["Case", "make_test_set"]


@dataclass
class Case:
    variables: dict[str, Any]
    expected: str | None = None
    tags: list[str] = field(default_factory=list)


def make_test_set(database_url: str, name: str, cases: list[Case], *, team: str = "testers") -> int:
    """A test set `name` with its next version holding `cases` (1, 2, ... in order); returns
    the version's number."""
    migrate(database_url)
    with Session(get_engine(database_url)) as session:
        test_set = session.exec(select(EvalSet).where(EvalSet.name == name)).first()
        if test_set is None:
            test_set = EvalSet(name=name, team=team, created_by="tests")
        test_set.latest_version += 1
        session.add(test_set)
        session.flush()
        assert test_set.id is not None
        variables = list(dict.fromkeys(name for case in cases for name in case.variables))
        version = EvalSetVersion(
            set_id=test_set.id,
            number=test_set.latest_version,
            cases=len(cases),
            variables=variables,
            created_by="tests",
        )
        session.add(version)
        session.flush()
        assert version.id is not None
        session.add_all(
            EvalCase(
                version_id=version.id,
                position=i,
                variables=case.variables,
                expected=case.expected,
                tags=case.tags,
            )
            for i, case in enumerate(cases, start=1)
        )
        session.commit()
        return version.number
