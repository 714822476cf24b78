"""Traces through the API and the pages: the chat app's service sends them (and nobody else);
only the runner, the agent's owner and admins read them, each known by kind and id, not by
name."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from agents.tracing.records import RunRecord, StepRecord
from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.main import create_app
from hub.models.service import utcnow
from hub.models.trace import TraceRun, TraceStep
from hub.services.traces import purge_forgotten
from hub.services.users import create_user, get_user
from tests.app.conftest import wait_until
from tests.conftest import APP_TOKEN, RunningHub
from tests.support.owners import as_person, as_service, namesakes, publish_agent, traced_run
from tests.support.servers import ThreadedServer

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
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(session=session, username="ada", password=PASSWORD, role=Role.builder)
    service, person = namesakes(hub, "billing-bot", team="billing")
    with service, person, as_person(hub, "ada") as ada:
        publish_agent(service, "invoicer")
        publish_agent(ada, "helper")
        of_the_service = traced_run(ada, slug="invoicer", user="ada", hub=hub)
        by_the_person = traced_run(person, slug="helper", user="billing-bot", hub=hub)
        runs = (of_the_service, by_the_person)

        assert _readable(person, *runs) == {by_the_person}
        assert _readable(service, *runs) == {of_the_service}
        assert _readable(ada, *runs) == set(runs)


# Sending traces: the agent runtime posts batches with the chat app's token.


def _run(run_id: str, user_key: str, **changes: Any) -> dict[str, Any]:
    record = RunRecord(
        id=run_id,
        agent_slug="weather-helper",
        agent_version=2,
        agent_owner="ada",
        agent_owner_kind="user",
        agent_owner_id="nobody",
        user="bob",
        user_kind="user",
        user_id=user_key,
        started_at=utcnow(),
    )
    return record.model_copy(update=changes).model_dump(mode="json")


def _step(step_id: str, run_id: str, seq: int, **changes: Any) -> dict[str, Any]:
    now = utcnow()
    record = StepRecord(
        id=step_id,
        run_id=run_id,
        seq=seq,
        kind="tool",
        name="weather/get_weather",
        started_at=now,
        ended_at=now + timedelta(milliseconds=20),
        latency_ms=20.0,
        input={"city": "Porto"},
        output="Rain.",
    )
    return record.model_copy(update=changes).model_dump(mode="json")


def _send(hub: RunningHub, token: str | None, body: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{hub.url}/api/traces/batch", json=body, headers=headers, timeout=30)


def _key(hub: RunningHub, username: str) -> str:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        user = get_user(session=session, username=username)
        assert user is not None
        return user.key


def test_the_chat_apps_traces_show_to_the_runner_with_their_steps_and_final_totals(
    hub: RunningHub, clients: dict[str, httpx.Client]
) -> None:
    bob = _key(hub, "bob")
    started = _send(
        hub, hub.app_token, {"runs": [_run("run-2", bob)], "steps": [_step("s-a", "run-2", 1)]}
    )
    assert started.status_code == 204, started.text
    assert clients["bob"].get("/api/traces/run-2").json()["status"] == "running"

    ended = _run("run-2", bob, status="ok", ended_at=utcnow(), steps=2)
    body = {"runs": [ended], "steps": [_step("s-b", "run-2", 2, output="Sun.")]}
    assert _send(hub, hub.app_token, body).status_code == 204
    # Sent again (as after an answer lost on the way back): nothing changes.
    assert _send(hub, hub.app_token, body).status_code == 204

    trace = clients["bob"].get("/api/traces/run-2").json()
    assert (trace["status"], trace["steps"]) == ("ok", 2)
    assert [(s["id"], s["output"]) for s in trace["timeline"]] == [
        ("s-a", "Rain."),
        ("s-b", "Sun."),
    ]
    page = clients["bob"].get("/traces/run-2")
    assert page.status_code == 200 and "weather/get_weather" in page.text
    assert clients["eve"].get("/api/traces/run-2").status_code == 404


def test_only_the_chat_apps_service_may_send_traces(
    hub: RunningHub, clients: dict[str, httpx.Client]
) -> None:
    body = {"runs": [_run("run-3", _key(hub, "bob"))]}
    other = _send(hub, hub.new_service("reporting", team="t"), body)
    assert other.status_code == 403
    assert other.json()["detail"] == (
        "Only the chat app's service may call POST /api/traces/batch; "
        "the service 'reporting' may not."
    )
    person = clients["bob"].post("/api/traces/batch", json=body, headers={"Origin": hub.url})
    assert person.status_code == 403 and "'bob' may not" in person.json()["detail"]
    signed_out = _send(hub, None, body)
    assert signed_out.status_code == 401 and "service token" in signed_out.json()["detail"]
    admin = hub.new_service("root", team="platform", admin=True)
    response = httpx.get(
        f"{hub.url}/api/traces/run-3", headers={"Authorization": f"Bearer {admin}"}
    )
    assert response.status_code == 404


def test_a_batch_over_the_limit_or_the_columns_sizes_is_refused_saying_so(
    hub: RunningHub,
) -> None:
    steps = [_step(f"s-{i}", "run-4", i) for i in range(1, 1001)]
    too_many = _send(hub, hub.app_token, {"runs": [_run("run-4", "k-bob")], "steps": steps})
    assert too_many.status_code == 422
    assert "at most 1000 runs and steps together; this one has 1001" in too_many.text

    too_long = _send(hub, hub.app_token, {"runs": [_run("run-4", "k-bob", user="b" * 101)]})
    assert too_long.status_code == 422
    assert "runs.0.user: String should have at most 100 characters" in too_long.text

    # More tokens than the database's integers hold (64 bits).
    too_large = _send(hub, hub.app_token, {"runs": [_run("run-4", "k-bob", input_tokens=2**63)]})
    assert too_large.status_code == 422
    assert "runs.0.input_tokens: Input should be less than or equal to" in too_large.text


def test_a_step_of_a_run_the_hub_never_had_is_refused_and_nothing_of_its_batch_is_written(
    hub: RunningHub, clients: dict[str, httpx.Client]
) -> None:
    body = {
        "runs": [_run("run-5", _key(hub, "bob"))],
        "steps": [_step("s-ok", "run-5", 1), _step("s-lost", "run-never", 1)],
    }
    refused = _send(hub, hub.app_token, body)
    assert refused.status_code == 422
    assert "runs the hub has no record of: 'run-never'" in refused.json()["detail"]
    assert clients["bob"].get("/api/traces/run-5").status_code == 404


def _conversation_runs(hub: RunningHub) -> None:
    """bob's runs: two in conversation "chat-a" (with a step each), one in "chat-b"."""
    bob = _key(hub, "bob")
    runs = [
        _run("run-a1", bob, conversation_id="chat-a"),
        _run("run-a2", bob, conversation_id="chat-a"),
        _run("run-b1", bob, conversation_id="chat-b"),
    ]
    steps = [_step("s-a1", "run-a1", 1), _step("s-a2", "run-a2", 1), _step("s-b1", "run-b1", 1)]
    assert _send(hub, hub.app_token, {"runs": runs, "steps": steps}).status_code == 204


def _forget(hub: RunningHub, token: str, conversation: str) -> httpx.Response:
    return httpx.delete(
        f"{hub.url}/api/traces",
        params={"conversation": conversation},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _stored(hub: RunningHub) -> tuple[list[str], list[str]]:
    """The runs of conversations and the steps `_conversation_runs` wrote, still stored."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        runs = session.exec(select(TraceRun).where(col(TraceRun.conversation_id).is_not(None)))
        steps = session.exec(select(TraceStep).where(col(TraceStep.id).startswith("s-")))
        return sorted(run.id for run in runs), sorted(step.id for step in steps)


def test_a_deleted_conversations_traces_are_kept_for_admins_only_then_removed(
    hub: RunningHub, clients: dict[str, httpx.Client], request: pytest.FixtureRequest
) -> None:
    _conversation_runs(hub)
    assert hub.settings.deleted_conversation_trace_days == 30
    person = clients["bob"].delete("/api/traces?conversation=chat-a", headers={"Origin": hub.url})
    assert person.status_code == 403

    assert _forget(hub, hub.app_token, "chat-a").status_code == 204

    listed = [run["id"] for run in clients["bob"].get("/api/traces").json()]
    assert "run-a1" not in listed and "run-a2" not in listed and "run-b1" in listed
    assert clients["bob"].get("/api/traces/run-a1").status_code == 404
    admin = as_service(hub, hub.new_service("auditor", team="platform", admin=True))
    request.addfinalizer(admin.close)
    assert admin.get("/api/traces/run-a1").json()["timeline"][0]["id"] == "s-a1"
    # Deleted again (a retry): the audit period still counts from the first deletion.
    assert _forget(hub, hub.app_token, "chat-a").status_code == 204
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        forgotten = session.get(TraceRun, "run-a1")
        assert forgotten is not None and forgotten.conversation_deleted_at is not None
        deleted_at = forgotten.conversation_deleted_at
        purge_forgotten(session=session, now=deleted_at + timedelta(days=29), keep_days=30)
    assert _stored(hub) == (["run-a1", "run-a2", "run-b1"], ["s-a1", "s-a2", "s-b1"])

    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        purge_forgotten(session=session, now=deleted_at + timedelta(days=30), keep_days=30)
    assert _stored(hub) == (["run-b1"], ["s-b1"])
    assert admin.get("/api/traces/run-a1").status_code == 404


def test_with_no_audit_period_a_deleted_conversations_traces_go_at_once(
    hub_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = hub_settings.model_copy(update={"deleted_conversation_trace_days": 0})
    monkeypatch.setenv("SB_TEST_PROVIDER_KEY", "sk-test-provider-key")
    with ThreadedServer(create_app(settings)) as server:
        hub = RunningHub(url=server.base_url, settings=settings, app_token=APP_TOKEN)
        with Session(get_engine(settings.sqlalchemy_url)) as session:
            create_user(
                session=session, username="bob", password=PASSWORD, team="t", role=Role.builder
            )
        _conversation_runs(hub)

        assert _forget(hub, hub.app_token, "chat-a").status_code == 204

        assert _stored(hub) == (["run-b1"], ["s-b1"])


def test_the_hub_removes_traces_past_their_audit_period_without_another_deletion(
    hub_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = hub_settings.model_copy(update={"trace_sweep_interval_s": 0.05})
    monkeypatch.setenv("SB_TEST_PROVIDER_KEY", "sk-test-provider-key")
    with ThreadedServer(create_app(settings)):
        engine = get_engine(settings.sqlalchemy_url)
        now = utcnow()
        deleted = {"expired": now - timedelta(days=31), "recent": now - timedelta(days=29)}
        with Session(engine) as session:
            for run_id, deleted_at in [*deleted.items(), ("live", None)]:
                record = RunRecord.model_validate(_run(run_id, "bob-key"))
                session.add(TraceRun(**record.model_dump(), conversation_deleted_at=deleted_at))
            session.commit()

        def remaining() -> set[str]:
            with Session(engine) as session:
                return set(session.exec(select(TraceRun.id)).all())

        wait_until(lambda: "expired" not in remaining(), what="the expired run to be removed")
        assert remaining() == {"recent", "live"}
