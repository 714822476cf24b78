"""A run survives its hub's restart: a 1,000-case run in a real hub process, stopped with
SIGTERM about half way, carries on in a new process on the same database and finishes; the
scripted upstream got each case (and its judge's call) exactly once, and the run's figures equal
counts made here. A case claimed by a hub that died is sent again once its claim is stale, and
not before."""

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, func, select, update

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.models.evaluation import EvalCase, EvalResult, EvalRun, EvalSet, ResultStatus, RunStatus
from hub.models.service import ServiceCreate, utcnow
from hub.services.service_accounts import create_service
from tests.conftest import APP_TOKEN, RunningHub, write_catalog
from tests.support.evaluation import (
    CHECKS,
    case_number,
    expected_outcomes,
    is_judge,
    make_test_set,
    make_tickets_prompt,
    scripted_reply,
    ticket_cases,
    wait_until_over,
)
from tests.support.gateway import hub_processes
from tests.support.owners import as_service
from tests.support.upstream import ScriptedUpstream

CASES = 1_000


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    return hub_settings.model_copy(update={"eval_poll_interval_s": 0.05})


def _results_in_flight(database_url: str) -> int:
    with Session(get_engine(database_url)) as session:
        query = select(func.count()).where(col(EvalResult.status) == ResultStatus.started.value)
        return session.exec(query).one()


def _wait_for_half(client: httpx.Client, run_id: int) -> dict[str, Any]:
    """The run once about half of its cases have results, having seen it in progress."""
    deadline = time.monotonic() + 60
    while True:
        run = client.get(f"/api/evaluation/runs/{run_id}").json()
        progress = run["progress"]
        if progress["done"] + progress["errors"] >= CASES // 2:
            return dict(run)
        assert time.monotonic() < deadline, f"the run did not get half way: {run}"
        time.sleep(0.05)


def test_a_run_stopped_half_way_finishes_after_a_restart_without_answering_a_case_twice(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    database_url = f"sqlite:///{tmp_path / 'hub.db'}"
    env = {
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_CATALOG_PATH": str(write_catalog(tmp_path / "models.yaml", upstream.url)),
        "SWITCHBOARD_APP_SERVICE_TOKEN": APP_TOKEN,
        "SWITCHBOARD_EVAL_POLL_INTERVAL_S": "0.1",
        "SB_TEST_PROVIDER_KEY": "sk-test-provider-key",
    }
    upstream.script(delay_s=0.02)
    upstream.reply_for = scripted_reply
    make_test_set(database_url, "tickets", ticket_cases(CASES), team="qa")
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()

    with hub_processes(env, tmp_path / "first", 1) as (url,):
        token = _service_token(database_url)
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}) as qa:
            make_tickets_prompt(qa)
            body = {"set": "tickets", "prompt": "tickets", "checks": CHECKS, "concurrency": 16}
            made = qa.post("/api/evaluation/runs", json=body)
            assert made.status_code == 201, made.text
            run_id = made.json()["id"]
            half = _wait_for_half(qa, run_id)
        assert half["status"] == "running"
    # The hub got SIGTERM: the cases it was answering finished, and it claimed no more.
    assert _results_in_flight(database_url) == 0
    answered_first = len({case_number(r) for r in upstream.requests if not is_judge(r)})
    assert CASES // 2 <= answered_first < CASES

    with hub_processes(env, tmp_path / "second", 1) as (url,):
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}) as qa:
            run = wait_until_over(qa, run_id, timeout_s=90)

    assert run["status"] == "finished"
    assert run["progress"] == {"done": CASES, "errors": 0, "in_flight": 0, "total": CASES}
    targets = sorted(case_number(r) for r in upstream.requests if not is_judge(r))
    judged = sorted(case_number(r) for r in upstream.requests if is_judge(r))
    assert targets == judged == list(range(1, CASES + 1))
    outcomes = {n: expected_outcomes(n) for n in range(1, CASES + 1)}
    passed = sum(all(checks.values()) for checks in outcomes.values())
    figures = run["aggregates"]
    assert (figures["passed"], figures["failed"], figures["errors"]) == (
        passed,
        CASES - passed,
        0,
    )
    by_check = {c["name"]: c["passed"] for c in figures["checks"]}
    assert by_check == {
        name: sum(checks[name] for checks in outcomes.values()) for name in outcomes[1]
    }


def _service_token(database_url: str) -> str:
    """A service of team qa in the hub's database."""
    with Session(get_engine(database_url)) as session:
        _, token = create_service(
            session=session, service_in=ServiceCreate(name="qa-bot", team="qa")
        )
    return token


def test_a_case_claimed_by_a_hub_that_died_is_sent_again_only_once_its_claim_is_stale(
    hub: RunningHub, upstream: ScriptedUpstream
) -> None:
    database_url = hub.settings.sqlalchemy_url
    make_test_set(database_url, "tickets", ticket_cases(4), team="qa")
    upstream.reply_for = scripted_reply
    token = hub.new_service("qa-bot", team="qa")
    with as_service(hub, token) as qa:
        make_tickets_prompt(qa)
        # A run whose case 2 another hub claimed a moment ago, and which that hub never ends.
        with Session(get_engine(database_url)) as session:
            test_set = session.exec(select(EvalSet).where(EvalSet.name == "tickets")).one()
            assert test_set.id is not None
            run = EvalRun(
                set_id=test_set.id,
                set_version=1,
                target_kind="prompt",
                target="tickets",
                target_version=1,
                cases=4,
                team="qa",
                created_by="tests",
                status=RunStatus.running.value,
            )
            session.add(run)
            session.flush()
            assert run.id is not None
            run_id = run.id
            case = session.exec(select(EvalCase).where(EvalCase.position == 2)).one()
            assert case.id is not None
            session.add(EvalResult(run_id=run_id, case_id=case.id, position=2))
            session.commit()

        deadline = time.monotonic() + 30
        while qa.get(f"/api/evaluation/runs/{run_id}").json()["progress"]["done"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert qa.get(f"/api/evaluation/runs/{run_id}").json()["status"] == "running"
        assert sorted(case_number(r) for r in upstream.requests) == [1, 3, 4]

        # That hub is gone: its claim is older than twice the request deadline.
        with Session(get_engine(database_url)) as session:
            stale = utcnow() - timedelta(seconds=2 * hub.settings.request_deadline_s + 1)
            session.exec(
                update(EvalResult).where(col(EvalResult.position) == 2).values(started_at=stale)
            )
            session.commit()
        finished = wait_until_over(qa, run_id)

    assert finished["status"] == "finished"
    assert finished["progress"]["done"] == 4
    assert sorted(case_number(r) for r in upstream.requests) == [1, 2, 3, 4]
