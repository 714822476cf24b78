"""The request id over real HTTP: taken from X-Request-ID (or made), sent back, passed on to the
provider and to MCP servers, written on the hub's log lines; a chat turn's id follows its model
and tool calls through the hub. A hostile id is replaced, never echoed."""

import json
import re
from pathlib import Path

import httpx
import pytest

from agents.hub_client import HubClient
from agents.runtime import run_agent
from agents.spec import AgentSpec, ToolSpec
from hub.core.request_ids import RequestIdScope, accepted_request_id
from hub.main import create_app
from tests.conftest import RunningHub
from tests.support.gateway import APP_TOKEN, Model, ask, gateway_settings, hub_processes
from tests.support.mcp_server import McpTestServer
from tests.support.servers import ThreadedServer
from tests.support.upstream import ScriptedUpstream

WEATHER_KEY = ("X-Weather-Key", "weather-key-51c0")
MADE_ID = re.compile(r"[0-9a-f]{32}")


def _ask_with_id(url: str, request_id: str | bytes) -> httpx.Response:
    body = {"model": "primary", "messages": [{"role": "user", "content": "hello there"}]}
    return httpx.post(
        url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {APP_TOKEN}", "x-request-id": request_id},
        timeout=30,
    )


def test_a_request_id_reaches_the_provider_comes_back_and_is_on_the_hubs_log_lines(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    settings = gateway_settings(tmp_path, Model("primary", [upstream.url]))
    env = {
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        "SWITCHBOARD_DATABASE_URL": settings.sqlalchemy_url,
        "SWITCHBOARD_CATALOG_PATH": str(settings.catalog_path),
        "SWITCHBOARD_APP_SERVICE_TOKEN": APP_TOKEN,
        "SWITCHBOARD_LOG_FORMAT": "json",
        # The failing call opens the breaker, which the hub logs as a warning.
        "SWITCHBOARD_RETRY_ATTEMPTS": "1",
        "SWITCHBOARD_BREAKER_FAILURES": "1",
    }
    with hub_processes(env, tmp_path, 1, log_level="info") as (url,):
        answered = _ask_with_id(url, "abc-123")
        other = ask(url, APP_TOKEN, "primary")
        upstream.script(status=503, error_message="region down")
        failed = _ask_with_id(url, "fail-1")
    log = (tmp_path / "hub-0.log").read_text()

    assert answered.status_code == 200, answered.text
    assert answered.headers["x-request-id"] == "abc-123"
    assert upstream.headers[0]["x-request-id"] == "abc-123"
    # A call without one gets one made for it, on the response and upstream alike.
    made = other.headers["x-request-id"]
    assert MADE_ID.fullmatch(made)
    assert upstream.headers[1]["x-request-id"] == made
    assert failed.status_code == 502 and failed.headers["x-request-id"] == "fail-1"
    # Every line is a JSON object; the access log line of each call carries its id, and so
    # does the hub's own warning while it answered the failing one.
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    calls = [line for line in access if "/v1/chat/completions" in line["message"]]
    assert [line["request_id"] for line in calls] == ["abc-123", made, "fail-1"]
    [opened] = [line for line in lines if "circuit breaker" in line["message"]]
    assert opened["level"] == "WARNING" and opened["request_id"] == "fail-1"
    # Start-up and shut-down lines belong to no request.
    assert all(line["request_id"] == "-" for line in lines if line not in [*access, opened])


# Sent as UTF-8 bytes; line breaks never get this far (the server refuses the request first).
HOSTILE = ["x" * 500, "abc 123", 'abc"><script>', "abc\t123", "é-123", ""]


def test_a_hostile_request_id_is_replaced_not_echoed(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    settings = gateway_settings(tmp_path, Model("primary", [upstream.url]))
    with ThreadedServer(create_app(settings)) as server:
        answers = [_ask_with_id(server.base_url, hostile.encode()) for hostile in HOSTILE]

    replaced = [answer.headers["x-request-id"] for answer in answers]
    assert all(answer.status_code == 200 for answer in answers)
    assert all(MADE_ID.fullmatch(made) for made in replaced), replaced
    assert len(set(replaced)) == len(HOSTILE)
    assert [headers["x-request-id"] for headers in upstream.headers] == replaced


@pytest.mark.parametrize("hostile", ["abc\n123", "abc\r\nSet-Cookie: x=1", "a" * 65, "../x/y"])
def test_an_id_with_line_breaks_or_too_long_is_never_accepted(hostile: str) -> None:
    # Line breaks never reach the hub over HTTP (the server refuses the request first); an id
    # from anywhere else is checked the same way.
    accepted = accepted_request_id(hostile)
    assert accepted != hostile and MADE_ID.fullmatch(accepted)
    assert accepted_request_id("4bf92f35-77b3-4da6.a3ce:929d_0e0e") == (
        "4bf92f35-77b3-4da6.a3ce:929d_0e0e"
    )


@pytest.mark.anyio
async def test_a_chat_turns_id_follows_its_model_and_tool_calls_to_the_provider_and_the_server(
    hub: RunningHub, upstream: ScriptedUpstream
) -> None:
    with McpTestServer(required_header=WEATHER_KEY) as weather:
        token = hub.new_service("weather-team-bot", team="weather")
        body = {
            "slug": "weather",
            "name": "Weather",
            "team": "weather",
            "url": weather.url,
            "auth_header_name": WEATHER_KEY[0],
            "auth_header_value": WEATHER_KEY[1],
        }
        async with httpx.AsyncClient(timeout=30) as http:
            registered = await http.post(
                hub.url + "/api/mcp/servers",
                json=body,
                headers={"authorization": f"Bearer {token}", "x-request-id": "register-1"},
            )
        assert registered.status_code == 201, registered.text
        tool = next(t for t in registered.json()["tools"] if t["name"] == "get_weather")
        spec = AgentSpec(
            slug="weather-helper",
            version=1,
            owner="ana",
            name="Weather helper",
            instructions="You answer questions about the weather.",
            model="test-model",
            tools=(
                ToolSpec(
                    server="weather",
                    name="get_weather",
                    description=tool["description"],
                    input_schema=tool["input_schema"],
                ),
            ),
        )
        upstream.enqueue(
            tool_calls=[{"name": "weather__get_weather", "arguments": {"city": "Lisbon"}}]
        )
        upstream.script(reply="Lisbon is clear.")
        async with HubClient(hub_url=hub.url, token=hub.app_token) as client:
            with RequestIdScope("turn-42"):
                result = await run_agent(
                    spec=spec,
                    hub=client,
                    user="ana",
                    conversation_id="conv-1",
                    message="Weather in Lisbon?",
                    checkpointer=None,
                    tracer=None,
                )
        seen = list(weather.mcp.seen_headers)

    assert result.status == "ok", result
    # Both model calls of the turn reached the provider with the turn's id.
    assert [headers["x-request-id"] for headers in upstream.headers] == ["turn-42", "turn-42"]
    # The tool call reached the MCP server with it, and registering with its own request's.
    tool_calls = [h for h in seen if h.get("x-request-id") == "turn-42"]
    assert tool_calls, seen
    assert all(h.get(WEATHER_KEY[0].lower()) == WEATHER_KEY[1] for h in tool_calls)
    assert any(h.get("x-request-id") == "register-1" for h in seen)


def test_a_tool_call_through_the_hub_passes_the_callers_id_to_the_server(
    hub: RunningHub,
) -> None:
    with McpTestServer(required_header=WEATHER_KEY) as weather:
        token = hub.new_service("weather-team-bot", team="weather")
        headers = {"authorization": f"Bearer {token}"}
        body = {
            "slug": "weather",
            "name": "Weather",
            "team": "weather",
            "url": weather.url,
            "auth_header_name": WEATHER_KEY[0],
            "auth_header_value": WEATHER_KEY[1],
        }
        assert httpx.post(hub.url + "/api/mcp/servers", json=body, headers=headers).is_success
        weather.mcp.seen_headers.clear()
        call = httpx.post(
            hub.url + "/api/mcp/servers/weather/tools/get_weather/call",
            json={"arguments": {"city": "Oslo"}},
            headers={**headers, "x-request-id": "tool-call-7"},
            timeout=30,
        )
        seen = list(weather.mcp.seen_headers)

    assert call.status_code == 200, call.text
    assert call.headers["x-request-id"] == "tool-call-7"
    # The tools/call POST carries it, and so does the session's opening, made for this call.
    sent = [h["x-request-id"] for h in seen if "x-request-id" in h]
    assert sent and set(sent) == {"tool-call-7"}
