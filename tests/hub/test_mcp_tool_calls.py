# ruff: noqa: F811 (`client` is the imported fixture, taken as an argument)
"""Tool calls through the hub on the direct streamable-HTTP path (and the SDK path for SSE
servers): real servers answering with SSE streams or JSON bodies, restarting, talking back."""

import aiohttp
import httpx
import pytest

from hub.mcp.client import Endpoint, McpUnavailableError
from hub.mcp.http_session import MAX_MESSAGE_BYTES, HttpSession, guarded_http
from hub.mcp.netguard import AddressRefusedError, GuardedResolver, NetworkPolicy
from hub.models.mcp_server import McpTransport

# The weather team's signed-in client, a fixture: the tests take it by name.
from tests.hub.test_mcp_registry import client  # noqa: F401
from tests.support.mcp_server import McpTestServer

LOOPBACK = NetworkPolicy.from_strings(["127.0.0.0/8", "::1/128"])
CALL = "/api/mcp/servers/weather/tools/{tool}/call"


def _register(client: httpx.Client, url: str, transport: str = "streamable_http") -> None:
    body = {
        "slug": "weather",
        "name": "Weather",
        "description": "Forecasts for office cities.",
        "team": "weather",
        "url": url,
        "transport": transport,
    }
    response = client.post("/api/mcp/servers", json=body)
    assert response.status_code == 201, response.text


def _call(client: httpx.Client, tool: str, **arguments: object) -> httpx.Response:
    return client.post(CALL.format(tool=tool), json={"arguments": arguments})


@pytest.mark.parametrize("json_response", [False, True], ids=["sse-stream", "json-body"])
def test_a_server_restarted_between_two_calls_is_called_on_a_new_session(
    client: httpx.Client, json_response: bool
) -> None:
    with McpTestServer(json_response=json_response) as weather:
        _register(client, weather.url)
        first = _call(client, "get_weather", city="Oslo")
        assert first.status_code == 200, first.text
        assert first.json()["structuredContent"]["city"] == "Oslo"
        # The new process has never heard of the hub's session: it answers 404, and the hub
        # opens a new session and sends the call again.
        weather.stop()
        weather.start()
        second = _call(client, "get_weather", city="Bergen")
        assert second.status_code == 200, second.text
        assert second.json()["structuredContent"]["city"] == "Bergen"


@pytest.mark.parametrize("json_response", [False, True], ids=["sse-stream", "json-body"])
def test_a_tool_error_comes_back_as_a_tool_result_with_is_error(
    client: httpx.Client, json_response: bool
) -> None:
    with McpTestServer(json_response=json_response) as weather:
        _register(client, weather.url)
        failed = _call(client, "flaky_forecast", days=3)
        assert failed.status_code == 200, failed.text
        assert failed.json()["isError"] is True
        assert "cannot forecast 3 days" in failed.json()["content"][0]["text"]
        refused = _call(client, "get_weather", town="Oslo")  # no `city`: the server refuses
        assert refused.status_code == 200 and refused.json()["isError"] is True
        assert "city" in refused.json()["content"][0]["text"]


def test_log_lines_sent_during_a_call_are_skipped_and_a_question_is_declined(
    client: httpx.Client,
) -> None:
    with McpTestServer(interactive=True) as weather:
        _register(client, weather.url)
        report = _call(client, "weather_report", city="Lima")
        assert report.status_code == 200, report.text
        assert report.json()["content"][0]["text"] == "Lima: clear skies"
        # The hub has no user to ask: it declines the server's question, as the SDK's client
        # does, and the tool reports that as its error.
        asked = _call(client, "confirm_city", city="Lima")
        assert asked.status_code == 200, asked.text
        assert asked.json()["isError"] is True
        assert "not supported" in asked.json()["content"][0]["text"]


def test_a_server_on_the_older_sse_transport_is_called_through_the_sdk(
    client: httpx.Client,
) -> None:
    with McpTestServer(transport="sse") as weather:
        _register(client, weather.url, transport="sse")
        answer = _call(client, "get_weather", city="Quito")
        assert answer.status_code == 200, answer.text
        assert answer.json()["structuredContent"] == {
            "city": "Quito",
            "temperature_c": 15,
            "sky": "clear",
        }
        assert _call(client, "flaky_forecast", days=1).json()["isError"] is True


@pytest.mark.anyio
async def test_a_server_by_name_is_reached_at_the_address_the_resolver_checked() -> None:
    [resolved] = await GuardedResolver(LOOPBACK).resolve("localhost", 80)
    assert resolved["host"] in ("127.0.0.1", "::1") and resolved["hostname"] == "localhost"
    with pytest.raises(AddressRefusedError, match="loopback"):
        await GuardedResolver(NetworkPolicy()).resolve("localhost", 80)
    with McpTestServer() as weather:
        by_name = weather.url.replace("127.0.0.1", "localhost")
        async with guarded_http(LOOPBACK, connect_timeout_s=5) as http:
            session = _session(http, by_name, LOOPBACK)
            result = await session.call_tool("get_weather", {"city": "Rome"})
            assert result["structuredContent"]["city"] == "Rome"
            await session.close()
        async with guarded_http(NetworkPolicy(), connect_timeout_s=5) as http:
            for url in (by_name, weather.url):
                with pytest.raises(McpUnavailableError, match="loopback"):
                    await _session(http, url, NetworkPolicy()).call_tool("get_weather", {})


@pytest.mark.anyio
async def test_a_call_past_its_deadline_or_size_limit_fails_with_a_clear_message() -> None:
    with McpTestServer(interactive=True) as weather:
        async with guarded_http(LOOPBACK, connect_timeout_s=5) as http:
            session = _session(http, weather.url, LOOPBACK, call_timeout_s=0.5)
            with pytest.raises(McpUnavailableError, match=r"did not answer within 0\.5 s"):
                await session.call_tool("slow_weather", {"city": "Lima", "seconds": 5})
            # The session is still good for the next call.
            result = await session.call_tool("get_weather", {"city": "Lima"})
            assert result["isError"] is False
            await session.close()
            session = _session(http, weather.url, LOOPBACK, call_timeout_s=30)
            too_large = MAX_MESSAGE_BYTES // 2**20 + 1
            with pytest.raises(McpUnavailableError, match="sent a message over 16 MiB"):
                await session.call_tool("long_report", {"megabytes": too_large})
            assert (await session.call_tool("long_report", {"megabytes": 1}))["isError"] is False
            await session.close()


def _session(
    http: aiohttp.ClientSession, url: str, policy: NetworkPolicy, call_timeout_s: float = 10
) -> HttpSession:
    return HttpSession(
        http,
        Endpoint(url=url, transport=McpTransport.streamable_http),
        policy=policy,
        connect_timeout_s=5,
        call_timeout_s=call_timeout_s,
    )


@pytest.mark.anyio
async def test_a_restart_under_a_kept_alive_connection_is_mended_in_one_call() -> None:
    with McpTestServer() as weather:
        async with guarded_http(LOOPBACK, connect_timeout_s=5) as http:
            session = _session(http, weather.url, LOOPBACK)
            assert (await session.call_tool("get_weather", {"city": "Oslo"}))["isError"] is False
            # The kept-alive connection dies with the old process, and the new process has
            # never heard of the session: both are mended within the one call.
            weather.stop()
            weather.start()
            result = await session.call_tool("get_weather", {"city": "Oslo"})
            assert result["structuredContent"]["city"] == "Oslo"
            await session.close()
