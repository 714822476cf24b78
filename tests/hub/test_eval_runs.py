"""Evaluation runs over real HTTP: a prompt version answers every case of a test set through
the gateway (the scripted upstream answers both the prompt and the judge), deterministic checks
and a judge score each answer, and the run's figures equal counts made here from the scripted
answers; the estimate comes before the start; bad checks and callers are refused; two runs are
compared case by case."""

import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.evaluation import (
    CHECKS,
    PRICE_IN,
    PRICE_OUT,
    RUBRIC,
    SYSTEM,
    Case,
    case_number,
    expected_outcomes,
    is_judge,
    make_test_set,
    make_tickets_prompt,
    scripted_reply,
    ticket_cases,
    wait_until_over,
)
from tests.support.mcp_server import McpTestServer
from tests.support.owners import as_person, as_service, page_clients
from tests.support.upstream import ScriptedUpstream, count_tokens

CASES = 50


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    return hub_settings.model_copy(update={"eval_poll_interval_s": 0.05})


@pytest.fixture
def qa(hub: RunningHub) -> Iterator[httpx.Client]:
    """A service of team qa, which owns the prompt."""
    with as_service(hub, hub.new_service("qa-bot", team="qa")) as client:
        make_tickets_prompt(client)
        yield client


def _body(**changes: Any) -> dict[str, Any]:
    return {"set": "tickets", "prompt": "tickets", "checks": CHECKS, "concurrency": 8, **changes}


def _cost(requests: list[dict[str, Any]]) -> tuple[int, int, float]:
    """Tokens in and out of `requests` as the scripted upstream counts them, and their cost."""
    tokens_in = tokens_out = 0
    for request in requests:
        tokens_in += sum(count_tokens(m["content"]) for m in request["messages"])
        tokens_out += count_tokens(scripted_reply(request))
    return tokens_in, tokens_out, (tokens_in * PRICE_IN + tokens_out * PRICE_OUT) / 1e6


def test_a_run_answers_every_case_once_and_its_figures_equal_independent_counts(
    hub: RunningHub, qa: httpx.Client, upstream: ScriptedUpstream
) -> None:
    # One more case whose variables do not fit the prompt: an error, never sent.
    cases = [*ticket_cases(CASES), Case(variables={"n": CASES + 1}, tags=["odd"])]
    make_test_set(hub.settings.sqlalchemy_url, "tickets", cases, team="qa")
    upstream.reply_for = scripted_reply

    estimate = qa.post("/api/evaluation/runs/estimate", json=_body())
    assert estimate.status_code == 200, estimate.text
    assert upstream.hits == 0
    figures = estimate.json()
    assert (figures["cases"], figures["unfit_cases"]) == (CASES + 1, 1)
    assert (figures["target_calls"], figures["judge_calls"]) == (CASES, CASES)
    created = qa.post("/api/evaluation/runs", json=_body())
    assert created.status_code == 201, created.text
    assert created.json()["estimated_cost_usd"] == figures["estimated_cost_usd"] > 0

    run = wait_until_over(qa, created.json()["id"])

    assert run["status"] == "finished"
    assert run["progress"] == {"done": CASES, "errors": 1, "in_flight": 0, "total": CASES + 1}
    targets = [case_number(r) for r in upstream.requests if not is_judge(r)]
    judged = [case_number(r) for r in upstream.requests if is_judge(r)]
    assert sorted(targets) == sorted(judged) == list(range(1, CASES + 1))
    expected = {n: expected_outcomes(n) for n in range(1, CASES + 1)}
    passed = {n for n, outcomes in expected.items() if all(outcomes.values())}
    figures = run["aggregates"]
    assert (figures["passed"], figures["failed"], figures["errors"]) == (
        len(passed),
        CASES - len(passed),
        1,
    )
    assert figures["pass_rate"] == pytest.approx(len(passed) / (CASES + 1))
    by_check = {c["name"]: (c["passed"], c["failed"]) for c in figures["checks"]}
    for name in ("valid_json", "required_fields", "contains", "numbered", "judge"):
        count = sum(outcomes[name] for outcomes in expected.values())
        assert by_check[name] == (count, CASES - count), name
    tags: Counter[str] = Counter()
    tags_passed: Counter[str] = Counter()
    for case in cases:
        n = case.variables["n"]
        tags.update(case.tags)
        tags_passed.update(case.tags if n in passed else [])
    assert {t["tag"]: (t["cases"], t["passed"]) for t in figures["tags"]} == {
        tag: (tags[tag], tags_passed[tag]) for tag in tags
    }
    tokens_in, tokens_out, cost = _cost(upstream.requests)
    assert (figures["input_tokens"], figures["output_tokens"]) == (tokens_in, tokens_out)
    assert figures["cost_usd"] == pytest.approx(cost, rel=1e-6)
    assert figures["latency_p50_ms"] <= figures["latency_p95_ms"]

    page = qa.get(f"/api/evaluation/runs/{run['id']}/results?only=failed&limit=10&offset=5")
    assert page.status_code == 200, page.text
    assert page.json()["total"] == CASES - len(passed) + 1
    shown = page.json()["results"]
    assert len(shown) == 10 and all(r["passed"] is not True for r in shown)
    last = qa.get(f"/api/evaluation/runs/{run['id']}/results?offset={CASES}").json()["results"]
    assert last[0]["status"] == "error" and "Missing variable(s)" in last[0]["error"]
    unjudged = qa.get(f"/api/evaluation/runs/{run['id']}/results?offset=6&limit=1").json()
    (judge,) = [o for o in unjudged["results"][0]["outcomes"] if o["name"] == "judge"]
    assert judge["passed"] is False and "did not answer" in judge["detail"]


def test_the_estimate_prices_the_rendered_messages_and_the_versions_max_tokens(
    hub: RunningHub, qa: httpx.Client, upstream: ScriptedUpstream
) -> None:
    cases = ticket_cases(7)
    make_test_set(hub.settings.sqlalchemy_url, "tickets", cases, team="qa")

    estimate = qa.post("/api/evaluation/runs/estimate", json=_body(checks=[]))

    assert estimate.status_code == 200, estimate.text
    tokens_in = sum(
        math.ceil((len(SYSTEM) + len(f"Ticket {c.variables['n']}: {c.variables['text']}")) / 4)
        for c in cases
    )
    cost = (tokens_in * PRICE_IN + 7 * 50 * PRICE_OUT) / 1e6
    assert estimate.json()["input_tokens"] == tokens_in
    assert estimate.json()["output_tokens"] == 7 * 50
    assert estimate.json()["estimated_cost_usd"] == pytest.approx(cost)
    assert upstream.hits == 0


@pytest.mark.parametrize(
    ("checks", "says"),
    [
        ([{"kind": "regex", "value": "(unclosed"}], "not a regular expression"),
        ([{"kind": "regex", "value": "a" * 1001}], "at most 1000"),
        ([{"kind": "json_schema", "json_schema": {"type": "nope"}}], "JSON schema is not valid"),
        ([{"kind": "judge", "model": "no-such-model", "rubric": "r"}], "no model 'no-such-model'"),
        ([{"kind": "contains"}, {"kind": "contains"}], "Two checks are named 'contains'"),
        ([{"kind": "regex"}], "a regex check needs 'value'"),
        ([{"kind": "shout"}], "checks.0.kind"),
    ],
)
def test_a_bad_check_is_refused_when_the_run_is_made(
    hub: RunningHub, qa: httpx.Client, checks: list[dict[str, Any]], says: str
) -> None:
    make_test_set(hub.settings.sqlalchemy_url, "tickets", ticket_cases(2), team="qa")

    for path in ("/api/evaluation/runs/estimate", "/api/evaluation/runs"):
        refused = qa.post(path, json=_body(checks=checks))
        assert refused.status_code == 422, refused.text
        assert says in refused.json()["detail"]
    assert qa.get("/api/evaluation/runs").json() == []


def test_a_missing_agent_set_or_version_is_named(hub: RunningHub, qa: httpx.Client) -> None:
    make_test_set(hub.settings.sqlalchemy_url, "tickets", ticket_cases(2), team="qa")

    agent = qa.post("/api/evaluation/runs", json=_body(prompt=None, agent="helper"))
    assert agent.status_code == 404 and "No agent 'helper'" in agent.json()["detail"]
    neither = qa.post("/api/evaluation/runs", json=_body(prompt=None))
    assert neither.status_code == 422 and "'prompt' or the 'agent'" in neither.json()["detail"]
    missing_set = qa.post("/api/evaluation/runs", json=_body(set="nope"))
    assert missing_set.status_code == 404 and "No test set 'nope'" in missing_set.text
    missing_version = qa.post("/api/evaluation/runs", json=_body(version=9))
    assert missing_version.status_code == 404 and "has no version 9" in missing_version.text
    too_many = qa.post("/api/evaluation/runs", json=_body(concurrency=17))
    assert too_many.status_code == 422


def test_only_the_prompts_team_starts_runs_and_anyone_signed_in_reads_them(
    hub: RunningHub, qa: httpx.Client, upstream: ScriptedUpstream
) -> None:
    make_test_set(hub.settings.sqlalchemy_url, "tickets", ticket_cases(3), team="qa")
    upstream.reply_for = scripted_reply
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(session=session, username="mia", password="pw", team="qa", role=Role.member)
    outsider = as_service(hub, hub.new_service("ops-bot", team="ops"))
    member = as_person(hub, "mia")
    admin = as_service(hub, hub.new_service("root-bot", team="ops", admin=True))

    for client in (outsider, member):
        for path in ("/api/evaluation/runs/estimate", "/api/evaluation/runs"):
            assert client.post(path, json=_body()).status_code == 403
    assert "Only team 'qa'" in outsider.post("/api/evaluation/runs", json=_body()).text
    made = admin.post("/api/evaluation/runs", json=_body())
    assert made.status_code == 201, made.text
    run_id = made.json()["id"]
    assert outsider.post(f"/api/evaluation/runs/{run_id}/cancel").status_code == 403

    assert wait_until_over(member, run_id)["status"] == "finished"
    assert [run["id"] for run in member.get("/api/evaluation/runs?prompt=tickets").json()] == [
        run_id
    ]
    assert member.get(f"/api/evaluation/runs/{run_id}/results").status_code == 200
    assert httpx.get(f"{hub.url}/api/evaluation/runs").status_code == 401
    assert member.get("/api/evaluation/runs/999").status_code == 404
    for client in (outsider, member, admin):
        client.close()


def test_a_cancelled_run_sends_no_more_cases(
    hub: RunningHub, qa: httpx.Client, upstream: ScriptedUpstream
) -> None:
    make_test_set(hub.settings.sqlalchemy_url, "tickets", ticket_cases(20), team="qa")
    upstream.script(reply="answer", delay_s=0.2)
    made = qa.post("/api/evaluation/runs", json=_body(checks=[], concurrency=1))

    cancelled = qa.post(f"/api/evaluation/runs/{made.json()['id']}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    run = wait_until_over(qa, made.json()["id"])
    assert run["status"] == "cancelled"
    answered = run["progress"]["done"] + run["progress"]["errors"]
    assert answered == upstream.hits < 20


def test_two_runs_of_one_set_version_are_compared_case_by_case(
    hub: RunningHub, qa: httpx.Client, upstream: ScriptedUpstream
) -> None:
    make_test_set(hub.settings.sqlalchemy_url, "tickets", ticket_cases(12), team="qa")
    checks = [{"kind": "contains"}]

    def run_with(right: set[int]) -> int:
        upstream.reply_for = lambda r: (
            f"answer {case_number(r)}" if case_number(r) in right else "no"
        )
        made = qa.post("/api/evaluation/runs", json=_body(checks=checks))
        assert made.status_code == 201, made.text
        return int(wait_until_over(qa, made.json()["id"])["id"])

    odd = {n for n in range(1, 13) if n % 2}
    thirds = {n for n in range(1, 13) if n % 3 == 0}
    before, after = run_with(odd), run_with(thirds)

    compared = qa.get(f"/api/evaluation/runs/{before}/compare/{after}")

    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert [row["position"] for row in body["better"]] == sorted(thirds - odd)
    assert [row["position"] for row in body["worse"]] == sorted(odd - thirds)
    assert body["unchanged_passed"] == len(odd & thirds)
    assert body["unchanged_failed"] == 12 - len(odd | thirds)
    assert body["missing"] == 0
    make_test_set(hub.settings.sqlalchemy_url, "tickets", ticket_cases(12), team="qa")
    other = run_with(odd)
    refused = qa.get(f"/api/evaluation/runs/{before}/compare/{other}")
    assert refused.status_code == 422
    assert "same test-set version" in refused.json()["detail"]


def test_the_pages_estimate_start_follow_and_compare_runs(
    hub: RunningHub, qa: httpx.Client, upstream: ScriptedUpstream
) -> None:
    make_test_set(hub.settings.sqlalchemy_url, "tickets", ticket_cases(6), team="qa")
    upstream.reply_for = scripted_reply
    people = [("ben", "qa", Role.builder), ("mia", "qa", Role.member)]
    with page_clients(hub, people) as client_for:
        ben, mia = client_for("ben"), client_for("mia")
        signed_out = httpx.get(f"{hub.url}/evaluation/runs/new", follow_redirects=False)
        assert signed_out.status_code == 303 and "/login" in signed_out.headers["location"]

        form = ben.get("/evaluation/runs/new?set=tickets&prompt=tickets")
        assert form.status_code == 200
        assert '<option value="1"' in form.text and "production (v1)" in form.text
        fields = {
            "set": "tickets",
            "prompt": "tickets",
            "check": ["valid_json", "regex"],
            "value:regex": "(unclosed",
            "judge_model": "test-model",
            "rubric": RUBRIC,
            "pass_score": "0.5",
            "concurrency": "4",
        }
        refused = ben.post("/evaluation/runs/new", data={**fields, "action": "estimate"})
        assert refused.status_code == 422 and "not a regular expression" in refused.text
        fields["value:regex"] = r"answer \d+"
        estimated = ben.post("/evaluation/runs/new", data={**fields, "action": "estimate"})
        assert estimated.status_code == 200, estimated.text
        assert 'id="estimate"' in estimated.text and 'id="start-button"' in estimated.text
        assert "6 calls of the prompt and 6 of the judge" in estimated.text
        assert upstream.hits == 0

        started = ben.post(
            "/evaluation/runs/new", data={**fields, "action": "start"}, follow_redirects=False
        )
        assert started.status_code == 303, started.text
        run_id = int(started.headers["location"].rsplit("/", 1)[1])
        following = ben.get(f"/evaluation/runs/{run_id}")
        assert following.status_code == 200 and 'id="progress-bar"' in following.text
        run = wait_until_over(ben, run_id)

        shown = mia.get(f"/evaluation/runs/{run_id}")
        assert shown.status_code == 200
        assert 'id="cancel-form"' not in shown.text and "<script>" not in shown.text
        assert f">{run['aggregates']['passed']}</td>" in shown.text
        assert shown.text.count('<tr id="case-') == 6
        failed = mia.get(f"/evaluation/runs/{run_id}?only=failed")
        assert failed.text.count('<tr id="case-') == run["aggregates"]["failed"]
        assert mia.post(f"/evaluation/runs/{run_id}/cancel").status_code == 403

        upstream.reply_for = lambda r: "plain words" if is_judge(r) else scripted_reply(r)
        again = ben.post(
            "/evaluation/runs/new", data={**fields, "action": "start"}, follow_redirects=False
        )
        second = int(again.headers["location"].rsplit("/", 1)[1])
        wait_until_over(ben, second)
        compared = mia.get(f"/evaluation/runs/{run_id}/compare/{second}")
        assert compared.status_code == 200
        assert 'id="worse"' in compared.text and 'id="better"' not in compared.text
        listed = mia.get("/evaluation/runs?prompt=tickets")
        assert f'href="/evaluation/runs/{second}"' in listed.text


def test_a_prompt_with_mcp_tools_is_run_with_them_and_its_calls_count_under_evaluation(
    hub: RunningHub, upstream: ScriptedUpstream
) -> None:
    token = hub.new_service("weather-bot", team="weather")
    with McpTestServer() as server, as_service(hub, token) as weather:
        registered = weather.post(
            "/api/mcp/servers",
            json={"slug": "weather", "name": "Weather", "team": "weather", "url": server.url},
        )
        assert registered.status_code == 201, registered.text
        made = weather.post(
            "/api/prompts",
            json={
                "name": "what-to-wear",
                "model": "test-model",
                "mcp_servers": ["weather"],
                "messages": [{"role": "user", "content": "What to wear in {{city}}?"}],
            },
        )
        assert made.status_code == 201, made.text
        cases = [Case(variables={"city": "Lisbon"}), Case(variables={"city": "Porto"})]
        make_test_set(hub.settings.sqlalchemy_url, "cities", cases, team="weather")
        # One case at a time, so the first asks for the tool and the second does not.
        asks = [{"name": "weather__get_weather", "arguments": {"city": "Lisbon"}}]
        upstream.enqueue(reply="", tool_calls=asks)
        upstream.script(reply="A light jacket.")
        checks = [{"kind": "tool_call", "tool": "weather.get_weather"}, {"kind": "contains"}]
        body = {"set": "cities", "prompt": "what-to-wear", "checks": checks, "concurrency": 1}

        created = weather.post("/api/evaluation/runs", json=body)
        assert created.status_code == 201, created.text
        run = wait_until_over(weather, created.json()["id"])

        results = weather.get(f"/api/evaluation/runs/{run['id']}/results").json()["results"]
        with as_service(hub, hub.new_service("root", team="ops", admin=True)) as admin:
            usage = admin.get(
                "/v1/usage", params={"group_by": ["service", "team", "prompt", "prompt_version"]}
            )
    assert [r["output"] for r in results] == ["A light jacket."] * 2
    first, second = ([(o["name"], o["passed"]) for o in r["outcomes"]] for r in results)
    assert first[0] == ("tool_call", True) and second[0] == ("tool_call", False)
    # No expected output in these cases: `contains` has nothing to look for.
    assert run["aggregates"]["checks"][1] == {
        "name": "contains",
        "passed": 0,
        "failed": 2,
        "pass_rate": 0.0,
    }
    (row,) = usage.json()["rows"]
    assert (row["service"], row["team"], row["prompt"], row["prompt_version"]) == (
        "evaluation",
        "weather",
        "what-to-wear",
        1,
    )
    assert row["requests"] == upstream.hits == 3
