"""Only the chat app's service acts for a person, over real HTTP: a tool call's `on_behalf_of`
and a model call's X-Switchboard-Agent from any other caller are ignored, so the call is made,
passed on and recorded as the caller alone."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from hub.core.db import get_engine
from hub.models.mcp_server import McpToolCall
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.mcp_server import McpTestServer

CALL = "/api/mcp/servers/weather/tools/get_weather/call"
ASKS_FOR_ANA = {"arguments": {"city": "Oslo"}, "on_behalf_of": "ana"}


@pytest.fixture
def weather(hub: RunningHub) -> Iterator[McpTestServer]:
    """The weather server, registered at the hub by its team's service."""
    owner = hub.new_service("weather-owner", team="weather")
    with McpTestServer() as server:
        registered = httpx.post(
            hub.url + "/api/mcp/servers",
            json={
                "slug": "weather",
                "name": "Weather",
                "description": "Forecasts for office cities.",
                "team": "weather",
                "url": server.url,
                "transport": "streamable_http",
            },
            headers={"Authorization": f"Bearer {owner}"},
            timeout=30,
        )
        assert registered.status_code == 201, registered.text
        yield server


def _call(hub: RunningHub, headers: dict[str, str], **client: Any) -> None:
    with httpx.Client(base_url=hub.url, timeout=30, **client) as http:
        answer = http.post(CALL, json=ASKS_FOR_ANA, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["structuredContent"]["city"] == "Oslo"


def _seen_user(weather: McpTestServer) -> Any:
    assert weather.mcp is not None
    return weather.mcp.seen_meta[-1]["switchboard_user"]  # type: ignore[attr-defined]


def _recorded_callers(hub: RunningHub) -> list[str]:
    admin = hub.new_service("calls-admin", team="platform", admin=True)
    # Reading the stats writes out the tool-call records still queued in memory.
    stats = httpx.get(
        hub.url + "/api/mcp/servers/weather/stats",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    assert stats.status_code == 200, stats.text
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        return list(session.exec(select(McpToolCall.caller)))


def test_a_plain_service_naming_a_person_calls_the_tool_and_is_recorded_as_itself(
    hub: RunningHub, weather: McpTestServer
) -> None:
    token = hub.new_service("reports-bot", team="reports")

    _call(hub, {"Authorization": f"Bearer {token}"})

    assert _seen_user(weather) == "reports-bot"
    assert _recorded_callers(hub) == ["reports-bot"]


def test_a_signed_in_person_naming_someone_else_calls_the_tool_as_themselves(
    hub: RunningHub, weather: McpTestServer
) -> None:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(session=session, username="bob", password="pw-bob", team="weather")
    with httpx.Client(base_url=hub.url, timeout=30) as browser:
        signed_in = browser.post("/login", data={"username": "bob", "password": "pw-bob"})
        assert signed_in.status_code == 303, signed_in.text
        cookies = dict(browser.cookies)

    _call(hub, {"Origin": hub.url}, cookies=cookies)

    assert _seen_user(weather) == "bob"
    assert _recorded_callers(hub) == ["bob"]


def test_the_chat_apps_service_still_calls_a_tool_for_the_person_it_names(
    hub: RunningHub, weather: McpTestServer
) -> None:
    _call(hub, {"Authorization": f"Bearer {hub.app_token}"})

    assert _seen_user(weather) == "ana"
    assert _recorded_callers(hub) == ["chat-app for ana"]


def test_only_the_chat_apps_service_has_its_model_calls_counted_for_the_agent_it_names(
    hub: RunningHub,
) -> None:
    plain = hub.new_service("reports-bot", team="reports")
    admin = hub.new_service("usage-admin", team="platform", admin=True)
    body = {"model": "test-model", "messages": [{"role": "user", "content": "hi there"}]}
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        for token, agent in (
            (plain, "data-analyst"),
            # Not even checked: the header is ignored, so the call is answered as any other.
            (plain, "Not A Slug!"),
            (hub.app_token, "data-analyst"),
        ):
            headers = {"Authorization": f"Bearer {token}", "X-Switchboard-Agent": agent}
            answer = client.post("/v1/chat/completions", json=body, headers=headers)
            assert answer.status_code == 200, answer.text
        report = client.get(
            "/v1/usage",
            params={"group_by": ["service", "agent"]},
            headers={"Authorization": f"Bearer {admin}"},
        )
    assert report.status_code == 200, report.text
    counted = {(row["service"], row["agent"]): row["requests"] for row in report.json()["rows"]}
    assert counted == {("reports-bot", None): 2, ("chat-app", "data-analyst"): 1}
