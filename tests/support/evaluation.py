"""Test sets written straight into the hub's database, for tests of runs (uploading them
through the API is tested on its own), and a scripted prompt with its judge: the upstream's
answer to each case is known, so each check's outcome can be worked out in the test.

The prompt `tickets` answers ticket n with `target_reply(n)`; the judge scores it with
`judge_reply(n)` (not JSON for every seventh case); `expected_outcomes(n)` is what every
check of `CHECKS` makes of that.
"""

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlmodel import Session, select

from hub.core.db import get_engine, migrate
from hub.models.evaluation import EvalCase, EvalSet, EvalSetVersion

__all__ = [
    "CHECKS",
    "JUDGE_START",
    "PRICE_IN",
    "PRICE_OUT",
    "RUBRIC",
    "SYSTEM",
    "Case",
    "case_number",
    "expected_outcomes",
    "is_judge",
    "judge_reply",
    "make_test_set",
    "make_tickets_prompt",
    "scripted_reply",
    "target_reply",
    "ticket_cases",
    "wait_until_over",
]


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


SYSTEM = "You answer support tickets in one line."
USER = "Ticket {{n}}: {{text}}"
JUDGE_START = "You judge an answer"
RUBRIC = "The answer names the ticket's number."
PRICE_IN, PRICE_OUT = 2.0, 8.0  # the test catalog's test-model, dollars per million tokens
CHECKS: list[dict[str, Any]] = [
    {"kind": "valid_json"},
    {"kind": "required_fields", "fields": ["answer"]},
    {"kind": "contains"},
    {"kind": "regex", "value": r"answer \d+", "name": "numbered"},
    {"kind": "judge", "model": "test-model", "rubric": RUBRIC, "pass_score": 0.5},
]


def case_number(request: dict[str, Any]) -> int:
    """The case a request is for: the ticket's number, in the prompt's or the judge's words."""
    text = request["messages"][-1]["content"]
    found = re.search(r'"n": (\d+)', text) or re.match(r"Ticket (\d+):", text)
    assert found is not None, text
    return int(found.group(1))


def is_judge(request: dict[str, Any]) -> bool:
    return str(request["messages"][0]["content"]).startswith(JUDGE_START)


def target_reply(n: int) -> str:
    return [f'{{"answer": "answer {n}"}}', f"answer {n}", "I cannot say."][n % 3]


def judge_reply(n: int) -> str:
    if n % 7 == 0:
        return "It looks fine to me."  # not the JSON asked for
    score = 0.2 if n % 4 == 0 else 0.9
    return json.dumps({"score": score, "reason": f"case {n}"})


def scripted_reply(request: dict[str, Any]) -> str:
    n = case_number(request)
    return judge_reply(n) if is_judge(request) else target_reply(n)


def ticket_cases(count: int) -> list[Case]:
    return [
        Case(
            variables={"n": n, "text": f"printer {n} is jammed"},
            expected=f"answer {n}",
            tags=["even" if n % 2 == 0 else "odd", *(["fifth"] if n % 5 == 0 else [])],
        )
        for n in range(1, count + 1)
    ]


def expected_outcomes(n: int) -> dict[str, bool]:
    """Each check's outcome for case n, worked out from the scripted replies."""
    reply = target_reply(n)
    try:
        value = json.loads(reply)
        is_json = True
    except ValueError:
        value, is_json = None, False
    verdict = judge_reply(n)
    judged = verdict.startswith("{") and json.loads(verdict)["score"] >= 0.5
    return {
        "valid_json": is_json,
        "required_fields": is_json and isinstance(value, dict) and "answer" in value,
        "contains": f"answer {n}" in reply,
        "numbered": re.search(r"answer \d+", reply) is not None,
        "judge": judged,
    }


def wait_until_over(client: httpx.Client, run_id: int, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.get(f"/api/evaluation/runs/{run_id}").json()
        if run["status"] not in ("queued", "running") and run["progress"]["in_flight"] == 0:
            return dict(run)
        assert time.monotonic() < deadline, f"the run did not end: {run}"
        time.sleep(0.05)


def make_tickets_prompt(client: httpx.Client) -> None:
    """The prompt `tickets` (max_tokens 50 on test-model), made by `client`'s caller."""
    made = client.post(
        "/api/prompts",
        json={
            "name": "tickets",
            "model": "test-model",
            "parameters": {"max_tokens": 50},
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": USER},
            ],
        },
    )
    assert made.status_code == 201, made.text
