"""With two hub replicas on one PostgreSQL database, each registered MCP server is checked once
per interval (by the leader only), and still once per interval after the leader is killed with
SIGKILL and the other replica takes the lead. The servers count the checks themselves: every
check opens an MCP session, whose first request carries no `mcp-session-id`."""

import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from hub.core.leader import LEADER_APPLICATION
from tests.app.conftest import wait_until
from tests.conftest import POSTGRES_ADMIN_DSN, _postgres_database
from tests.support.mcp_server import build_weather_server
from tests.support.servers import ThreadedServer
from tests.support.topology import running_topology
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.postgres

INTERVAL_S = 0.5
# Long enough for several intervals; a second checker would double the count.
WINDOW_S = 8 * INTERVAL_S


class CountedServer:
    """A weather MCP server on 127.0.0.1 that notes when each new MCP session starts."""

    def __init__(self) -> None:
        self.session_starts: list[float] = []
        self._lock = threading.Lock()
        app = build_weather_server().streamable_http_app()

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["method"] == "POST":
                headers = {key.decode().lower() for key, _ in scope["headers"]}
                if "mcp-session-id" not in headers:
                    with self._lock:
                        self.session_starts.append(time.monotonic())
            await app(scope, receive, send)

        self._server = ThreadedServer(counted)

    @property
    def url(self) -> str:
        return f"{self._server.base_url}/mcp"

    def starts_between(self, start: float, end: float) -> list[float]:
        with self._lock:
            return [at for at in self.session_starts if start <= at < end]

    def __enter__(self) -> "CountedServer":
        self._server.__enter__()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.__exit__(None, None, None)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_database()


def _leader_pid(database_url: str) -> int | None:
    """The process id of the replica that holds the leader lock, from its connection's name."""
    database = database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        row = admin.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = %s",
            (database,),
        ).fetchone()
    if row is None:
        return None
    name = str(row[0])
    assert name.startswith(LEADER_APPLICATION), name
    return int(name.rsplit(":", 1)[1])


def _assert_checked_once_per_interval(servers: list[CountedServer], start: float) -> None:
    """Each server's checks in a window after `start`: at least two, and never two sooner than
    half an interval apart (a second replica checking would put checks side by side and
    double their number)."""
    time.sleep(WINDOW_S)
    end = time.monotonic()
    for server in servers:
        starts = server.starts_between(start, end)
        assert len(starts) >= 2, f"only {len(starts)} checks in {WINDOW_S} s"
        assert len(starts) <= WINDOW_S / INTERVAL_S + 1, starts
        gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
        assert min(gaps) >= INTERVAL_S / 2, f"two checks {min(gaps):.3f} s apart"


def test_each_server_is_checked_once_per_interval_and_again_after_the_leader_is_killed(
    tmp_path: Path, postgres_url: str, upstream: ScriptedUpstream
) -> None:
    extra_env = {"SWITCHBOARD_MCP_CHECK_INTERVAL_S": str(INTERVAL_S)}
    with (
        CountedServer() as weather,
        CountedServer() as forecast,
        running_topology(
            tmp_path, postgres_url, upstream.url, chat=False, extra_env=extra_env
        ) as running,
    ):
        servers = [weather, forecast]
        replicas = {
            child.process.pid: child for child in running.children if "hub replica" in child.name
        }
        assert len(replicas) == 2
        token = running.hub.new_service("weather-team-bot", team="weather")
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=running.hub.url, headers=headers, timeout=30) as client:
            for slug, server in (("weather", weather), ("forecast", forecast)):
                body = {"slug": slug, "name": slug.title(), "team": "weather", "url": server.url}
                made = client.post("/api/mcp/servers", json=body)
                assert made.status_code == 201, made.text

        wait_until(lambda: _leader_pid(postgres_url) in replicas, timeout_s=30, what="a leader")
        leader = _leader_pid(postgres_url)
        assert leader is not None
        _assert_checked_once_per_interval(servers, time.monotonic())

        os.kill(leader, signal.SIGKILL)
        replicas[leader].process.wait(timeout=10)
        wait_until(
            lambda: _leader_pid(postgres_url) not in (None, leader),
            timeout_s=30,
            what="the other replica's lead",
        )
        assert _leader_pid(postgres_url) in set(replicas) - {leader}
        _assert_checked_once_per_interval(servers, time.monotonic())
