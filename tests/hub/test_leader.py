"""Work done once among replicas: of two leader locks on one PostgreSQL database exactly one
leads, and the other takes over once the leader's connection dies or it hands over; a hub that
does not lead runs no scheduled MCP health check, and two real hubs on one database hand the
checks over when the leader stops. On SQLite the one process leads."""

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import psycopg
import pytest

from hub.core.config import Settings
from hub.core.leader import LeaderLock
from hub.main import create_app
from tests.conftest import APP_TOKEN, POSTGRES_ADMIN_DSN, RunningHub, _postgres_database
from tests.support.mcp_server import McpTestServer
from tests.support.outage import database_down
from tests.support.servers import ThreadedServer

WORK = "the scheduled MCP health checks"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_database()


@pytest.fixture
def hub_database_url(postgres_url: str) -> str:
    """The hubs of these tests run on PostgreSQL."""
    return postgres_url


@pytest.fixture
def weather() -> Iterator[McpTestServer]:
    with McpTestServer() as server:
        yield server


def _terminate_lock_holder(database_url: str) -> None:
    """End the PostgreSQL session that holds an advisory lock in the database, as a dead
    network or a crashed replica would."""
    database = database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        holders = admin.execute(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = %s",
            (database,),
        ).fetchall()
    assert holders == [(True,)]


@pytest.mark.postgres
def test_of_two_replicas_exactly_one_leads_and_the_other_takes_over_when_it_dies(
    postgres_url: str,
) -> None:
    first, second = LeaderLock(postgres_url, work=WORK), LeaderLock(postgres_url, work=WORK)
    try:
        assert first.is_leader()
        assert not second.is_leader()
        assert first.is_leader()
        assert not second.is_leader()

        _terminate_lock_holder(postgres_url)
        assert second.is_leader()
        # The old leader sees its connection gone, and the lock is taken.
        assert not first.is_leader()
        assert second.is_leader()

        second.close()
        assert first.is_leader()
        assert not second.is_leader()
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_a_database_down_is_logged_once_and_its_return_once(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hub.core.leader")
    lock = LeaderLock(postgres_url, work=WORK)
    try:
        with database_down(postgres_url):
            for _ in range(5):
                assert not lock.is_leader()
        assert lock.is_leader()
    finally:
        lock.close()
    said = [record.getMessage() for record in caplog.records]
    assert sum("cannot try to lead" in line for line in said) == 1, said
    assert sum(line.endswith("reaches the database again") for line in said) == 1, said
    assert sum(line.endswith(f"leads {WORK} now") for line in said) == 1, said


def test_on_sqlite_the_one_process_leads(tmp_path: Path) -> None:
    lock = LeaderLock(f"sqlite:///{tmp_path / 'hub.db'}", work=WORK)
    assert lock.is_leader()
    assert lock.is_leader()
    lock.close()


def _client(hub: RunningHub, url: str) -> httpx.Client:
    token = hub.new_service("weather-team-bot", team="weather")
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _register(client: httpx.Client, url: str) -> None:
    body = {"slug": "weather", "name": "Weather", "team": "weather", "url": url}
    made = client.post("/api/mcp/servers", json=body)
    assert made.status_code == 201, made.text
    assert made.json()["health"] == "up"


def _health(client: httpx.Client) -> str:
    return str(client.get("/api/mcp/servers/weather").json()["health"])


def _wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s} s"
        time.sleep(0.05)


@pytest.mark.postgres
def test_a_hub_that_does_not_lead_runs_no_scheduled_health_check(
    hub: RunningHub, weather: McpTestServer, postgres_url: str
) -> None:
    other_replica = LeaderLock(postgres_url, work=WORK)
    try:
        # Another replica took the lead before this hub's first try (its interval is 0.5 s).
        assert other_replica.is_leader()
        with _client(hub, hub.url) as client:
            _register(client, weather.url)
            weather.stop()
            # Eight of this hub's intervals: a check in any of them would find the server down.
            quiet_until = time.monotonic() + 8 * hub.settings.mcp_check_interval_s
            while time.monotonic() < quiet_until:
                assert _health(client) == "up"
                time.sleep(0.1)

            other_replica.close()
            _wait_until(lambda: _health(client) == "down", "a check by the new leader")
    finally:
        other_replica.close()


@pytest.mark.postgres
def test_two_hubs_on_one_database_check_from_the_leader_only_and_hand_over_when_it_stops(
    hub_settings: Settings,
    hub_port: int,
    weather: McpTestServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SB_TEST_PROVIDER_KEY", "sk-test-provider-key")
    caplog.set_level(logging.INFO, logger="hub.core.leader")

    def leads() -> int:
        return sum(record.getMessage().endswith(f"leads {WORK} now") for record in caplog.records)

    with ExitStack() as first_hub:
        first = first_hub.enter_context(ThreadedServer(create_app(hub_settings), port=hub_port))
        hub = RunningHub(url=first.base_url, settings=hub_settings, app_token=APP_TOKEN)
        # Alone, the first hub leads from its first try.
        _wait_until(lambda: leads() == 1, "the first hub's lead")
        second = ThreadedServer(create_app(hub_settings))
        with second, _client(hub, second.base_url) as client:
            _register(client, weather.url)
            weather.stop()
            _wait_until(lambda: _health(client) == "down", "a check by the leader")
            # The second hub tries to lead at each of its intervals, in vain.
            quiet_until = time.monotonic() + 4 * hub_settings.mcp_check_interval_s
            while time.monotonic() < quiet_until:
                assert leads() == 1
                time.sleep(0.1)

            # The first hub stops: its lock is released, and the second takes the lead.
            first_hub.close()
            _wait_until(lambda: leads() == 2, "the second hub's lead")
            weather.start()
            _wait_until(lambda: _health(client) == "up", "a check by the new leader")
