# ruff: noqa: F811 (`client` is the imported fixture, taken as an argument)
"""Names a registered MCP server chooses (tools, prompts, resources) are checked when the hub
discovers them, and the chat app and the agent runtime send them to the hub as one escaped
path segment: a crafted name never reaches another hub route with their service token."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from agents.hub_client import HubClient
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub

# The weather team's signed-in client, a fixture: the tests take it by name.
from tests.hub.test_mcp_registry import client  # noqa: F401
from tests.support.mcp_server import (
    CRAFTED_PROMPT,
    CRAFTED_RESOURCE,
    CRAFTED_TOOL,
    DOTTED_TOOL,
    McpTestServer,
)

# Names that would leave their path segment if they went into the URL raw, and what the hub
# must answer for each: the registry's own "no such tool" (the name arrived whole), or the
# router's 404 for a name with a "/" in it (Starlette decodes %2F before routing).
ESCAPING_NAMES = [
    ("get_weather?x=", "'weather' offers no tool 'get_weather?x='"),
    ("get_weather#", "'weather' offers no tool 'get_weather#'"),
    ("..", "'weather' offers no tool '..'"),
    (".", "'weather' offers no tool '.'"),
    ("../check#", "Not Found"),  # raw, it would be POST /api/mcp/servers/weather/check
    ("x/../../agents/foo/publish#", "Not Found"),
    ("../../../../../v1/usage?x=", "Not Found"),
]


@pytest.fixture
def odd_weather(client: httpx.Client) -> Iterator[dict[str, Any]]:
    """The weather server with odd names, registered; yields the hub's answer."""
    with McpTestServer(odd_names=True) as weather:
        body = {
            "slug": "weather",
            "name": "Weather",
            "description": "Forecasts for office cities.",
            "team": "weather",
            "url": weather.url,
        }
        response = client.post("/api/mcp/servers", json=body)
        assert response.status_code == 201, response.text
        yield response.json()


@pytest.fixture
async def tool_client(hub: RunningHub) -> AsyncIterator[HubClient]:
    async with HubClient(hub_url=hub.url, token=hub.app_token) as client:
        yield client


def test_a_tool_whose_name_climbs_out_of_the_call_url_is_not_offered_and_the_hub_says_why(
    client: httpx.Client, odd_weather: dict[str, Any]
) -> None:
    names = {tool["name"] for tool in odd_weather["tools"]}
    assert names == {"get_weather", "flaky_forecast", DOTTED_TOOL}
    assert odd_weather["health"] == "up" and odd_weather["status"] == "active"
    reason = odd_weather["last_error"]
    assert f"tool {CRAFTED_TOOL!r} was refused: its name must be 1 to 128 letters" in reason
    assert f"prompt {CRAFTED_PROMPT!r} was refused" in reason
    assert f"resource {CRAFTED_RESOURCE!r} was refused" in reason
    assert "forecast_brief" not in reason and "'cities'" not in reason

    # The next check finds the same: still up, still refused, nothing to review.
    checked = client.post("/api/mcp/servers/weather/check").json()
    assert checked["status"] == "active" and checked["last_error"] == reason
    assert {tool["name"] for tool in checked["tools"]} == names

    # Asked for by its (escaped) name, the hub does not know the tool.
    refused = client.post(
        "/api/mcp/servers/weather/tools/..%2F..%2F..%2Fv1%2Fusage/call", json={"arguments": {}}
    )
    assert refused.status_code == 404


def test_the_server_page_shows_the_refusal_and_server_text_escaped(
    hub: RunningHub, odd_weather: dict[str, Any]
) -> None:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(session=session, username="grace", password="pw-grace", role=Role.builder)
    with httpx.Client(base_url=hub.url, headers={"Origin": hub.url}, timeout=30) as browser:
        signed_in = browser.post("/login", data={"username": "grace", "password": "pw-grace"})
        assert signed_in.status_code == 303
        page = browser.get("/servers/weather").text
    assert "tool &#39;../../../v1/usage&#39; was refused" in page
    assert "Today&#39;s weather &lt;script&gt;alert(1)&lt;/script&gt;." in page
    assert "<script>alert(1)" not in page


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "answer"), ESCAPING_NAMES)
async def test_the_agent_runtime_sends_a_tool_name_as_one_escaped_path_segment(
    tool_client: HubClient, odd_weather: dict[str, Any], tool: str, answer: str
) -> None:
    outcome = await tool_client.call_tool(server="weather", tool=tool, arguments={}, user="ana")
    assert outcome.is_error
    assert outcome.text.startswith(f"The hub refused the call to {tool} (404): {answer}"), (
        outcome.text
    )


@pytest.mark.anyio
async def test_a_server_slug_is_escaped_as_well(
    tool_client: HubClient, odd_weather: dict[str, Any]
) -> None:
    outcome = await tool_client.call_tool(server="..", tool="get_weather", arguments={}, user="ana")
    assert outcome.text.endswith("No MCP server is registered as '..'."), outcome.text


@pytest.mark.anyio
async def test_a_tool_with_a_dot_in_its_name_works_end_to_end(
    tool_client: HubClient, odd_weather: dict[str, Any]
) -> None:
    outcome = await tool_client.call_tool(
        server="weather", tool=DOTTED_TOOL, arguments={"city": "Oslo"}, user="ana"
    )
    assert (outcome.text, outcome.is_error) == ("Oslo today: clear skies", False)
