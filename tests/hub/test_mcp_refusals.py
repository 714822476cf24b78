"""What a refused registration tells whom, over real HTTP: a hub that may reach no loopback
address, a real MCP server on 127.0.0.1 registered by the name `localhost`."""

import logging
from collections.abc import Iterator

import pytest

from hub.core.config import Settings
from tests.conftest import RunningHub
from tests.support.mcp_server import McpTestServer, register_weather
from tests.support.owners import as_service


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    # Only a documentation network is allowed: loopback is refused as an internal address.
    return hub_settings.model_copy(update={"mcp_allowed_networks": "192.0.2.0/24"})


@pytest.fixture
def weather() -> Iterator[McpTestServer]:
    with McpTestServer() as server:
        yield server


def test_a_member_learns_what_kind_of_address_a_name_is_but_not_the_address(
    hub: RunningHub, weather: McpTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    by_name = f"http://localhost:{weather.port}/mcp"
    with as_service(hub, hub.new_service("weather-team-bot", team="weather")) as member:
        refused = register_weather(member, by_name)
    assert refused.status_code == 400, refused.text
    detail = refused.json()["detail"]
    assert "localhost resolves to a loopback address outside the networks" in detail, detail
    assert "127.0.0.1" not in detail
    # The hub's log has the address, for whoever runs the hub.
    assert "localhost resolves to 127.0.0.1" in caplog.text

    with as_service(hub, hub.new_service("root", team="ops", admin=True)) as admin:
        told = register_weather(admin, by_name)
    assert told.status_code == 400
    assert "localhost resolves to 127.0.0.1" in told.json()["detail"]
