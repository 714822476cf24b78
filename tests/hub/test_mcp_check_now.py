""" "Check now" over real HTTP: a real hub whose on-demand checks are limited to one per
minute per server, and real MCP servers on 127.0.0.1."""

from collections.abc import Iterator

import httpx
import pytest

from hub.core.config import Settings
from tests.conftest import RunningHub
from tests.support.mcp_server import McpTestServer, register_weather
from tests.support.owners import as_service

LIMIT_S = 60


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    return hub_settings.model_copy(update={"mcp_check_now_interval_s": float(LIMIT_S)})


@pytest.fixture
def client(hub: RunningHub) -> Iterator[httpx.Client]:
    with as_service(hub, hub.new_service("weather-team-bot", team="weather")) as http:
        yield http


def test_check_now_is_for_the_team_and_admins_and_once_a_minute_per_server(
    hub: RunningHub, client: httpx.Client
) -> None:
    with McpTestServer() as weather, McpTestServer() as radar:
        assert register_weather(client, weather.url).status_code == 201
        assert register_weather(client, radar.url, slug="radar").status_code == 201
        with as_service(hub, hub.new_service("billing-bot", team="billing")) as other:
            assert other.post("/api/mcp/servers/weather/check").status_code == 403

        assert client.post("/api/mcp/servers/weather/check").status_code == 200
        again = client.post("/api/mcp/servers/weather/check")
        assert again.status_code == 429, again.text
        wait = int(again.headers["Retry-After"])
        assert 1 <= wait <= LIMIT_S
        assert f"check it again in {wait} s" in again.json()["detail"]
        with as_service(hub, hub.new_service("root", team="ops", admin=True)) as admin:
            assert admin.post("/api/mcp/servers/weather/check").status_code == 429
        # The limit is per server.
        assert client.post("/api/mcp/servers/radar/check").status_code == 200
