"""Reading traces through the API and the pages: only the runner, the agent's owner, admins,
each known by kind and id, not by name."""

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlmodel import Session

from hub.core.db import get_engine
from hub.core.roles import Role
from hub.models.service import utcnow
from hub.models.trace import TraceRun, TraceStep
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.owners import as_person, namesakes, publish_agent, traced_run

PASSWORD = "pw-traces"


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


@pytest.fixture
def trace_id(hub: RunningHub) -> str:
    """A finished run of ada's agent, made by bob: a model call, a tool call, a model call."""
    start = utcnow()
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        keys = {
            name: create_user(
                session=session, username=name, password=PASSWORD, team="t", role=Role.builder
            ).key
            for name in ("ada", "bob", "eve")
        }
        session.add(
            TraceRun(
                id="run-1",
                agent_slug="weather-helper",
                agent_version=2,
                agent_owner="ada",
                agent_owner_kind="user",
                agent_owner_id=keys["ada"],
                user="bob",
                user_kind="user",
                user_id=keys["bob"],
                started_at=start,
                ended_at=start + timedelta(milliseconds=90),
                status="ok",
                steps=3,
                input_tokens=30,
                output_tokens=12,
                cost_usd=0.00012,
            )
        )
        session.flush()
        steps = [
            ("s1", None, "model", "test-model", {"role": "assistant", "tool_calls": ["x"]}, None),
            ("s2", "s1", "tool", "weather.get_weather", {"temperature_c": 16}, None),
            ("s3", None, "model", "test-model", {"role": "assistant", "content": "Sunny."}, None),
        ]
        for seq, (step_id, parent, kind, name, output, error) in enumerate(steps, start=1):
            session.add(
                TraceStep(
                    id=step_id,
                    run_id="run-1",
                    parent_id=parent,
                    seq=seq,
                    kind=kind,
                    name=name,
                    started_at=start + timedelta(milliseconds=30 * (seq - 1)),
                    ended_at=start + timedelta(milliseconds=30 * seq),
                    latency_ms=30.0,
                    input={"city": "Lisbon"} if kind == "tool" else [{"role": "user"}],
                    output=output,
                    input_tokens=15 if kind == "model" else 0,
                    output_tokens=6 if kind == "model" else 0,
                    error=error,
                )
            )
        session.commit()
    return "run-1"


def _as(hub: RunningHub, username: str) -> httpx.Client:
    client = httpx.Client(base_url=hub.url, timeout=30)
    client.post("/login", data={"username": username, "password": PASSWORD})
    return client


@pytest.fixture
def clients(hub: RunningHub, trace_id: str) -> Iterator[dict[str, httpx.Client]]:
    people = {name: _as(hub, name) for name in ("ada", "bob", "eve")}
    yield people
    for client in people.values():
        client.close()


def test_the_runner_and_the_agents_owner_read_the_trace_in_order(
    clients: dict[str, httpx.Client], trace_id: str
) -> None:
    for name in ("ada", "bob"):
        trace = clients[name].get(f"/api/traces/{trace_id}").json()
        assert [(s["seq"], s["kind"]) for s in trace["timeline"]] == [
            (1, "model"),
            (2, "tool"),
            (3, "model"),
        ]
        assert trace["timeline"][1]["parent_id"] == "s1"
        assert [run["id"] for run in clients[name].get("/api/traces").json()] == [trace_id]
    page = clients["ada"].get(f"/traces/{trace_id}")
    assert page.status_code == 200
    assert "weather.get_weather" in page.text and "Sunny." in page.text


def test_anyone_else_gets_not_found_from_the_api_and_the_page(
    clients: dict[str, httpx.Client], trace_id: str, hub: RunningHub
) -> None:
    assert clients["eve"].get(f"/api/traces/{trace_id}").status_code == 404
    assert clients["eve"].get("/api/traces").json() == []
    page = clients["eve"].get(f"/traces/{trace_id}")
    assert page.status_code == 404 and "Sunny." not in page.text
    service = hub.new_service("snoop", team="t")
    response = httpx.get(
        f"{hub.url}/api/traces/{trace_id}", headers={"Authorization": f"Bearer {service}"}
    )
    assert response.status_code == 404
    admin = hub.new_service("auditor", team="platform", admin=True)
    response = httpx.get(
        f"{hub.url}/api/traces/{trace_id}", headers={"Authorization": f"Bearer {admin}"}
    )
    assert response.status_code == 200


def _readable(client: httpx.Client, *run_ids: str) -> set[str]:
    """Which of `run_ids` the client's caller finds in the list and may open."""
    listed = {run["id"] for run in client.get("/api/traces").json()} & set(run_ids)
    opened = {i for i in run_ids if client.get(f"/api/traces/{i}").status_code == 200}
    assert listed == opened
    return opened


def test_a_person_named_like_a_service_reads_none_of_its_traces_nor_the_service_theirs(
    hub: RunningHub,
) -> None:
    url = hub.settings.sqlalchemy_url
    with Session(get_engine(url)) as session:
        create_user(session=session, username="ada", password=PASSWORD, role=Role.builder)
    service, person = namesakes(hub, "billing-bot", team="billing")
    with service, person, as_person(hub, "ada") as ada:
        publish_agent(service, "invoicer")
        publish_agent(ada, "helper")
        of_the_service = traced_run(ada, slug="invoicer", user="ada", database_url=url)
        by_the_person = traced_run(person, slug="helper", user="billing-bot", database_url=url)
        runs = (of_the_service, by_the_person)

        assert _readable(person, *runs) == {by_the_person}
        assert _readable(service, *runs) == {of_the_service}
        assert _readable(ada, *runs) == set(runs)
