"""Evaluation runs of an agent version over real HTTP: the hub runs the agent's loop for every
case (its model calls through the gateway to the scripted upstream, its weather tool through
the registry to a real MCP server), the checks read the final answer and the tools called, and
the results' outputs, tokens, costs and the run's figures equal what is worked out here from
the scripted answers; usage is the evaluation service's, under the agent; a case without a
message is an error; a step that waits for a person's approval ends its case; an unknown agent
is a 404 and someone who may not change the agent gets a 403."""

import html
import json
import math
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mcp.server.fastmcp import FastMCP
from sqlmodel import Session

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.evaluation import (
    PRICE_IN,
    PRICE_OUT,
    Case,
    is_judge,
    make_test_set,
    wait_until_over,
)
from tests.support.mcp_server import McpTestServer
from tests.support.owners import as_person, as_service, page_clients
from tests.support.servers import ThreadedServer
from tests.support.upstream import ScriptedUpstream, count_tokens

INSTRUCTIONS = "Use the weather tool when it helps, then advise on clothes."
ANSWERABLE = 13  # cases 1-12 give a `message`, case 13 its only variable
CHECKS: list[dict[str, Any]] = [
    {"kind": "tool_call", "tool": "weather.get_weather"},
    {"kind": "contains", "value": "Town"},
    {"kind": "judge", "model": "test-model", "rubric": "Advises on clothes.", "pass_score": 0.5},
]


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    return hub_settings.model_copy(
        update={"eval_poll_interval_s": 0.05, "query_approval_bytes": 1_000}
    )


@pytest.fixture
def alice(hub: RunningHub) -> Iterator[httpx.Client]:
    """Alice (a builder of team support) with the people of the test, acting through the
    chat app's token."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for name, team in [("alice", "support"), ("carol", "sales")]:
            create_user(
                session=session, username=name, password=f"pw-{name}", team=team, role=Role.builder
            )
    with as_person(hub, "alice") as client:
        yield client


def _register(hub: RunningHub, slug: str, url: str) -> None:
    with as_service(hub, hub.new_service(f"{slug}-bot", team=slug)) as team:
        registered = team.post(
            "/api/mcp/servers", json={"slug": slug, "name": slug.title(), "team": slug, "url": url}
        )
        assert registered.status_code == 201, registered.text


def _publish(client: httpx.Client, slug: str, server: str, tools: list[str]) -> None:
    made = client.post(
        "/api/agents",
        json={
            "slug": slug,
            "name": slug.title(),
            "instructions": INSTRUCTIONS,
            "model": "test-model",
            "mcp_servers": [server],
            "allowed_tools": {server: tools},
            "max_tokens": 512,
        },
    )
    assert made.status_code == 201, made.text
    assert client.post(f"/api/agents/{slug}/publish").status_code == 201


def _message(n: int) -> str:
    return f"What should I wear in Town{n}?"


def _number(text: str) -> int:
    found = re.search(r"Town(\d+)", text)
    assert found is not None, text
    return int(found.group(1))


def _judge_reply(n: int) -> str:
    return json.dumps({"score": 0.9 if n % 2 == 0 else 0.2, "reason": f"case {n}"})


def _reply(request: dict[str, Any]) -> str:
    """The scripted model: every third town is looked up first, and the answer then gives the
    temperature the tool returned."""
    if is_judge(request):
        return _judge_reply(_number(request["messages"][-1]["content"]))
    n = _number(request["messages"][1]["content"])
    last = request["messages"][-1]
    if last["role"] == "tool":
        temperature = json.loads(last["content"])["temperature_c"]
        return f"It is {temperature} C in Town{n}: wear a jacket."
    return f"Wear a jumper in Town{n}."


def _tool_calls(request: dict[str, Any]) -> list[dict[str, Any]]:
    if is_judge(request) or request["messages"][-1]["role"] != "user":
        return []
    n = _number(request["messages"][1]["content"])
    if n % 3:
        return []
    return [{"name": "weather__get_weather", "arguments": {"city": f"Town{n}"}}]


def _expected_output(n: int) -> str:
    # The weather server's temperature: 10 plus the letters of the city's name.
    if n % 3 == 0:
        return f"It is {10 + len(f'Town{n}')} C in Town{n}: wear a jacket."
    return f"Wear a jumper in Town{n}."


def _cases() -> list[Case]:
    cases = [Case(variables={"message": _message(n)}, tags=["all"]) for n in range(1, 13)]
    cases.append(Case(variables={"question": _message(13)}, tags=["all"]))
    cases.append(Case(variables={"city": "Town14", "day": "monday"}, tags=["all"]))
    return cases


def _spent(requests: list[dict[str, Any]]) -> tuple[int, int]:
    """Tokens in and out of `requests` as the scripted upstream counts them."""
    tokens_in = tokens_out = 0
    for request in requests:
        tokens_in += sum(
            count_tokens(m["content"]) for m in request["messages"] if isinstance(m["content"], str)
        )
        tokens_out += count_tokens(_reply(request)) + len(_tool_calls(request))
    return tokens_in, tokens_out


def _case_of(request: dict[str, Any]) -> int:
    text = request["messages"][-1 if is_judge(request) else 1]["content"]
    return _number(text)


def _traces(client: httpx.Client, agent: str, count: int) -> list[dict[str, Any]]:
    """The agent's traces, once `count` of them have ended (the tracer sends in batches)."""
    deadline = time.monotonic() + 30
    while True:
        traces = client.get("/api/traces", params={"agent": agent}).json()
        if len([t for t in traces if t["ended_at"]]) >= count:
            return list(traces)
        assert time.monotonic() < deadline, traces
        time.sleep(0.1)


def test_an_agent_version_answers_every_case_and_its_figures_equal_independent_counts(
    hub: RunningHub, alice: httpx.Client, upstream: ScriptedUpstream
) -> None:
    with McpTestServer() as weather:
        _register(hub, "weather", weather.url)
        _publish(alice, "forecaster", "weather", ["get_weather"])
        make_test_set(hub.settings.sqlalchemy_url, "towns", _cases(), team="support")
        upstream.reply_for = _reply
        upstream.tool_calls_for = _tool_calls
        body = {"set": "towns", "agent": "forecaster", "checks": CHECKS, "concurrency": 4}

        without_judge = alice.post(
            "/api/evaluation/runs/estimate", json={**body, "checks": CHECKS[:2]}
        )
        estimate = alice.post("/api/evaluation/runs/estimate", json=body)
        created = alice.post("/api/evaluation/runs", json=body)
        assert created.status_code == 201, created.text
        run = wait_until_over(alice, created.json()["id"])
        results = alice.get(f"/api/evaluation/runs/{run['id']}/results").json()["results"]
        traces = _traces(alice, "forecaster", ANSWERABLE)
        with as_service(hub, hub.new_service("root", team="ops", admin=True)) as admin:
            usage = admin.get("/v1/usage", params={"group_by": ["service", "team", "agent"]})

    # The estimate: one call of the version's model per case with a message, at its prices.
    assert without_judge.status_code == estimate.status_code == 200, estimate.text
    figures = without_judge.json()
    assert (figures["cases"], figures["unfit_cases"]) == (ANSWERABLE + 1, 1)
    assert (figures["target_calls"], figures["judge_calls"]) == (ANSWERABLE, 0)
    tokens_in = [math.ceil((len(INSTRUCTIONS) + len(_message(n))) / 4) for n in range(1, 14)]
    assert figures["input_tokens"] == sum(tokens_in)
    assert figures["output_tokens"] == 512 * ANSWERABLE
    cost = sum(t * PRICE_IN + 512 * PRICE_OUT for t in tokens_in) / 1e6
    assert figures["estimated_cost_usd"] == pytest.approx(cost)
    assert estimate.json()["judge_calls"] == ANSWERABLE
    assert "one model call per case" in estimate.json()["basis"]

    assert run["status"] == "finished", run
    assert (run["target_kind"], run["target"], run["target_version"]) == ("agent", "forecaster", 1)
    assert run["team"] == "support"
    assert run["progress"] == {"done": ANSWERABLE, "errors": 1, "in_flight": 0, "total": 14}

    by_case: dict[int, list[dict[str, Any]]] = {}
    for request in upstream.requests:
        by_case.setdefault(_case_of(request), []).append(request)
    # One fresh conversation per case: no case's request carries another town.
    for n, requests in by_case.items():
        for request in requests:
            towns = set(re.findall(r"Town\d+", json.dumps(request["messages"])))
            assert towns == {f"Town{n}"}
    assert sorted(by_case) == list(range(1, ANSWERABLE + 1))

    outcomes_by_check: Counter[tuple[str, bool]] = Counter()
    for result in results[:ANSWERABLE]:
        n = result["position"]
        assert result["status"] == "done", result
        assert result["output"] == _expected_output(n)
        expected = {"tool_call": n % 3 == 0, "contains": True, "judge": n % 2 == 0}
        assert {o["name"]: o["passed"] for o in result["outcomes"]} == expected
        assert result["passed"] == all(expected.values())
        outcomes_by_check.update(expected.items())
        tokens_in_n, tokens_out_n = _spent(by_case[n])
        assert (result["input_tokens"], result["output_tokens"]) == (tokens_in_n, tokens_out_n)
        assert result["cost_usd"] == pytest.approx(
            (tokens_in_n * PRICE_IN + tokens_out_n * PRICE_OUT) / 1e6
        )
    unfit = results[ANSWERABLE]
    assert unfit["status"] == "error" and unfit["output"] is None
    assert "gives the agent no message" in unfit["error"]
    assert "'city', 'day'" in unfit["error"]

    passed = [n for n in range(1, ANSWERABLE + 1) if n % 6 == 0]
    figures = run["aggregates"]
    assert (figures["passed"], figures["failed"], figures["errors"]) == (
        len(passed),
        ANSWERABLE - len(passed),
        1,
    )
    assert figures["pass_rate"] == pytest.approx(len(passed) / 14)
    assert {c["name"]: (c["passed"], c["failed"]) for c in figures["checks"]} == {
        name: (outcomes_by_check[(name, True)], outcomes_by_check[(name, False)])
        for name in ("tool_call", "contains", "judge")
    }
    all_in, all_out = _spent(upstream.requests)
    assert (figures["input_tokens"], figures["output_tokens"]) == (all_in, all_out)
    assert figures["cost_usd"] == pytest.approx((all_in * PRICE_IN + all_out * PRICE_OUT) / 1e6)

    # Usage: the evaluation service with the agent's team, the agent's calls under the agent.
    rows = {(r["service"], r["team"], r["agent"]): r["requests"] for r in usage.json()["rows"]}
    agent_calls = ANSWERABLE + len([n for n in range(1, ANSWERABLE + 1) if n % 3 == 0])
    assert rows == {
        ("evaluation", "support", "forecaster"): agent_calls,
        ("evaluation", "support", None): ANSWERABLE,
    }
    assert upstream.hits == agent_calls + ANSWERABLE
    assert len([r for r in upstream.requests if is_judge(r)]) == ANSWERABLE

    # Each case's loop is kept as a trace of the agent's version, as a chat turn's is.
    ended = [t for t in traces if t["ended_at"]]
    assert len(ended) == ANSWERABLE
    shown = {(t["agent_version"], t["status"], t["user"]) for t in ended}
    assert shown == {(1, "ok", "evaluation")}
    steps = Counter(t["steps"] for t in ended)
    # A model call per case; with the tool: the call, the tool, and the answer.
    assert steps == {1: ANSWERABLE - 4, 3: 4}


# A warehouse whose every query scans more than the test's approval threshold (1,000 bytes).
_QUERIES_RUN: list[str] = []


def _warehouse() -> FastMCP:
    server = FastMCP("warehouse")

    @server.tool()
    def dry_run_query(sql: str) -> dict[str, Any]:
        """What the query would scan and cost."""
        return {"bytes_processed": 5_000_000, "cost_usd": 0.03}

    @server.tool()
    def run_query(sql: str) -> dict[str, Any]:
        """Run the query."""
        _QUERIES_RUN.append(sql)
        return {"rows": [{"n": 1}]}

    return server


def test_a_step_waiting_for_approval_ends_its_case_as_an_error_with_nothing_run(
    hub: RunningHub, alice: httpx.Client, upstream: ScriptedUpstream
) -> None:
    _QUERIES_RUN.clear()
    with ThreadedServer(_warehouse().streamable_http_app()) as warehouse:
        _register(hub, "warehouse", f"{warehouse.base_url}/mcp")
        _publish(alice, "analyst", "warehouse", ["dry_run_query", "run_query"])
        cases = [Case(variables={"message": f"How many orders in Town{n}?"}) for n in (1, 2)]
        make_test_set(hub.settings.sqlalchemy_url, "orders", cases, team="support")
        upstream.reply_for = lambda request: "Unused."
        upstream.tool_calls_for = lambda request: (
            [{"name": "warehouse__run_query", "arguments": {"sql": "SELECT COUNT(*) FROM o"}}]
            if request["messages"][-1]["role"] == "user"
            else []
        )
        body = {"set": "orders", "agent": "analyst", "concurrency": 2}
        created = alice.post("/api/evaluation/runs", json=body)
        assert created.status_code == 201, created.text
        run = wait_until_over(alice, created.json()["id"])
        results = alice.get(f"/api/evaluation/runs/{run['id']}/results").json()["results"]
        traces = _traces(alice, "analyst", 2)

    assert run["progress"] == {"done": 0, "errors": 2, "in_flight": 0, "total": 2}
    for result in results:
        assert "cannot be approved in a batch run" in result["error"], result
        assert "5.0 MB" in result["error"]
    assert _QUERIES_RUN == []
    # One model call per case: nothing after the step that waited.
    assert upstream.hits == 2
    assert {t["status"] for t in traces} == {"declined"}


def test_who_may_run_an_agent_and_what_is_refused(
    hub: RunningHub, alice: httpx.Client, upstream: ScriptedUpstream
) -> None:
    with McpTestServer() as weather:
        _register(hub, "weather", weather.url)
        _publish(alice, "forecaster", "weather", ["get_weather"])
    make_test_set(hub.settings.sqlalchemy_url, "towns", _cases(), team="support")
    body = {"set": "towns", "agent": "forecaster"}

    unknown = alice.post("/api/evaluation/runs", json={**body, "agent": "nope"})
    assert unknown.status_code == 404 and "No agent 'nope'" in unknown.json()["detail"]
    no_version = alice.post("/api/evaluation/runs/estimate", json={**body, "version": 9})
    assert no_version.status_code == 404 and "no version 9" in no_version.json()["detail"]
    both = alice.post("/api/evaluation/runs", json={**body, "prompt": "tickets"})
    assert both.status_code == 422 and "not both" in both.json()["detail"]
    with as_person(hub, "carol") as carol:
        for path in ("/api/evaluation/runs/estimate", "/api/evaluation/runs"):
            outsider = carol.post(path, json=body)
            assert outsider.status_code == 403, outsider.text
            assert "its owner" in outsider.json()["detail"]
        created = alice.post("/api/evaluation/runs", json={**body, "version": 1})
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        assert carol.post(f"/api/evaluation/runs/{run_id}/cancel").status_code == 403
        assert carol.get(f"/api/evaluation/runs/{run_id}").json()["target"] == "forecaster"
    cancelled = alice.post(f"/api/evaluation/runs/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text


def test_the_pages_start_a_run_of_an_agent_version_and_link_to_the_agent(
    hub: RunningHub, alice: httpx.Client, upstream: ScriptedUpstream
) -> None:
    with McpTestServer() as weather:
        _register(hub, "weather", weather.url)
        _publish(alice, "forecaster", "weather", ["get_weather"])
    make_test_set(hub.settings.sqlalchemy_url, "towns", _cases(), team="support")
    with page_clients(hub, []) as client_for:
        page = client_for("alice")
        form = page.get("/evaluation/runs/new?set=towns&agent=forecaster")
        assert form.status_code == 200
        assert "live (v1)" in form.text and "cannot be run yet" not in form.text
        fields = {
            "set": "towns",
            "agent": "forecaster",
            "agent_version": "1",
            "check": ["contains"],
            "value:contains": "Hello",
            "concurrency": "2",
        }
        estimated = page.post("/evaluation/runs/new", data={**fields, "action": "estimate"})
        assert estimated.status_code == 200, estimated.text
        assert f"{ANSWERABLE} calls of the agent and 0 of the judge" in estimated.text
        assert "1 cases do not give the agent a message" in estimated.text
        started = page.post(
            "/evaluation/runs/new", data={**fields, "action": "start"}, follow_redirects=False
        )
        assert started.status_code == 303, started.text
        run_id = int(started.headers["location"].rsplit("/", 1)[1])
        run = wait_until_over(page, run_id)
        _traces(alice, "forecaster", ANSWERABLE)
        shown = page.get(f"/evaluation/runs/{run_id}")
        listed = page.get("/evaluation/runs")
        links = re.findall(r'href="(/traces\?[^"]+)" class="trace-link"', shown.text)
        # Each answered case links to its own trace; the case without a message to none.
        assert len(links) == ANSWERABLE
        traces_shown = [page.get(html.unescape(link)).text for link in links]

    assert run["aggregates"]["passed"] == ANSWERABLE and run["aggregates"]["errors"] == 1
    assert 'href="/agents/forecaster" id="target-link"' in shown.text
    assert "agent forecaster v1" in listed.text
    assert [text.count('href="/traces/') for text in traces_shown] == [1] * ANSWERABLE
