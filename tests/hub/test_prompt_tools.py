"""Prompts whose model calls MCP tools, over real HTTP: the scripted upstream asks for a tool,
the hub calls it on a real MCP server through the registry and sends the result back, and the
service gets the answer with every round's usage and the calls that were made; in a stream,
in the playground, and with a tool that fails."""

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import RunningHub
from tests.support.mcp_server import McpTestServer
from tests.support.owners import as_service
from tests.support.upstream import ScriptedUpstream, count_tokens

REPLY = "It is clear in Lisbon, 16 degrees."
MESSAGES = [
    {"role": "system", "content": "You answer questions about the weather in {{city}}."},
    {"role": "user", "content": "What should I wear today?"},
]
CITY = {"city": "Lisbon"}


@pytest.fixture
def weather(hub: RunningHub) -> Iterator[McpTestServer]:
    token = hub.new_service("weather-bot", team="weather")
    with McpTestServer() as server, as_service(hub, token) as client:
        registered = client.post(
            "/api/mcp/servers",
            json={"slug": "weather", "name": "Weather", "team": "weather", "url": server.url},
        )
        assert registered.status_code == 201, registered.text
        yield server


@pytest.fixture
def team(hub: RunningHub, weather: McpTestServer) -> Iterator[httpx.Client]:
    """A service of team travel, which makes the prompt and calls it by name."""
    with as_service(hub, hub.new_service("travel-bot", team="travel")) as client:
        yield client


def _make(client: httpx.Client, **extra: Any) -> None:
    body = {
        "name": "what-to-wear",
        "messages": MESSAGES,
        "model": "test-model",
        "mcp_servers": ["weather"],
        **extra,
    }
    made = client.post("/api/prompts", json=body)
    assert made.status_code == 201, made.text


def _asks_for(upstream: ScriptedUpstream, tool: str, arguments: dict[str, Any]) -> None:
    """The model's next answer asks for `tool`; the one after it is REPLY."""
    upstream.enqueue(reply="", tool_calls=[{"name": tool, "arguments": arguments}])
    upstream.script(reply=REPLY)


def _tokens_in(upstream: ScriptedUpstream) -> int:
    """The prompt tokens of every request the upstream got, counted as it counts them."""
    return sum(
        count_tokens(message["content"])
        for request in upstream.requests
        for message in request["messages"]
        if isinstance(message.get("content"), str)
    )


def test_the_hub_calls_the_tool_the_model_asks_for_and_returns_the_answer(team, upstream):
    _make(team)
    _asks_for(upstream, "weather__get_weather", {"city": "Lisbon"})

    answer = team.post("/v1/prompts/what-to-wear/completions", json={"variables": CITY})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["choices"][0]["message"]["content"] == REPLY
    (call,) = body["switchboard_tool_calls"]
    assert (call["server"], call["tool"], call["arguments"]) == (
        "weather",
        "get_weather",
        {"city": "Lisbon"},
    )
    assert call["is_error"] is False
    # The test server's weather: 10 degrees plus the length of the city's name.
    result = orjson.loads(call["result"])
    assert result == {"city": "Lisbon", "temperature_c": 10 + len("Lisbon"), "sky": "clear"}

    first, second = upstream.requests
    offered = sorted(tool["function"]["name"] for tool in first["tools"])
    assert offered == ["weather__flaky_forecast", "weather__get_weather"]
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "weather__get_weather"
    assert second["messages"][-1]["role"] == "tool"
    assert orjson.loads(second["messages"][-1]["content"]) == result
    assert body["usage"]["prompt_tokens"] == _tokens_in(upstream)
    assert body["usage"]["completion_tokens"] == 1 + count_tokens(REPLY)


def test_only_the_allowed_tools_are_offered_and_a_failing_tool_is_reported(team, upstream):
    _make(team, allowed_tools={"weather": ["flaky_forecast"]})
    _asks_for(upstream, "weather__flaky_forecast", {"days": 3})

    answer = team.post("/v1/prompts/what-to-wear/completions", json={"variables": CITY})

    assert answer.status_code == 200, answer.text
    (call,) = answer.json()["switchboard_tool_calls"]
    assert call["is_error"] is True
    assert "cannot forecast 3 days" in call["result"]
    first, second = upstream.requests
    assert [tool["function"]["name"] for tool in first["tools"]] == ["weather__flaky_forecast"]
    assert second["messages"][-1]["content"].startswith("The tool flaky_forecast failed:")


def test_a_streamed_call_gets_the_answer_as_events_once_the_tools_are_done(team, upstream):
    _make(team)
    _asks_for(upstream, "weather__get_weather", {"city": "Lisbon"})
    body = {"variables": CITY, "stream": True, "stream_options": {"include_usage": True}}

    answer = team.post("/v1/prompts/what-to-wear/completions", json=body)

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [e.removeprefix("data: ") for e in answer.text.strip().split("\n\n")]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == REPLY
    assert chunks[0]["switchboard_tool_calls"][0]["tool"] == "get_weather"
    assert chunks[-1]["usage"]["prompt_tokens"] == _tokens_in(upstream)


def test_the_playground_runs_a_prompt_with_tools(hub, weather, upstream):
    _asks_for(upstream, "weather__get_weather", {"city": "Lisbon"})
    with as_service(hub, hub.new_service("tryer", team="travel")) as builder:
        answer = builder.post(
            "/api/playground",
            json={
                "messages": MESSAGES,
                "model": "test-model",
                "mcp_servers": ["weather"],
                "variables": CITY,
            },
        )
    assert answer.status_code == 200, answer.text
    first = orjson.loads(answer.text.split("\n\n")[0].removeprefix("data: "))
    assert first["choices"][0]["delta"]["content"] == REPLY
    assert first["switchboard_tool_calls"][0]["arguments"] == {"city": "Lisbon"}


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"mcp_servers": ["nowhere"]}, "No MCP server is registered as 'nowhere'."),
        ({"allowed_tools": {"weather": ["get_rain"]}}, "'weather' offers no tool 'get_rain'"),
        ({"allowed_tools": {"maps": ["route"]}}, "Tools are allowed for 'maps'"),
    ],
)
def test_servers_and_tools_are_checked_when_a_version_is_made(team, extra, said):
    body = {"name": "what-to-wear", "messages": MESSAGES, "model": "test-model"}
    made = team.post("/api/prompts", json={**body, "mcp_servers": ["weather"], **extra})

    assert made.status_code == 422
    assert said in made.json()["detail"]
