"""Tool names as the model sees them, the history repair after a stopped run, and tool calls
whose failures become text for the model instead of exceptions."""

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agents.hub_client import HubClient
from agents.runtime import function_name
from agents.runtime.hub_tools import ToolIndex
from agents.runtime.limits import close_open_tool_calls
from agents.spec import ToolSpec
from tests.support.servers import ThreadedServer, free_port

pytestmark = pytest.mark.anyio


def test_function_names_keep_only_the_characters_and_length_openai_accepts() -> None:
    assert function_name("weather", "get_weather") == "weather__get_weather"
    assert function_name("hr.tools", "look up/person") == "hr_tools__look_up_person"
    assert len(function_name("s" * 40, "t" * 40)) == 64


def test_tools_whose_names_collide_after_cleaning_get_distinct_names() -> None:
    schema = {"type": "object", "properties": {}}
    index = ToolIndex(
        [
            ToolSpec(server="a.b", name="run", description="first", input_schema=schema),
            ToolSpec(server="a_b", name="run", description="second", input_schema=schema),
            ToolSpec(server="x" * 70, name="one", description="third", input_schema={}),
            ToolSpec(server="x" * 70, name="two", description="fourth", input_schema={}),
        ]
    )
    names = [f["function"]["name"] for f in index.functions]
    assert names[:2] == ["a_b__run", "a_b__run_2"]
    assert len(set(names)) == 4 and all(len(n) <= 64 for n in names)
    assert index.by_name["a_b__run_2"].description == "second"
    assert index.functions[2]["function"]["parameters"] == {"type": "object", "properties": {}}


def test_tool_calls_left_without_an_answer_are_answered_before_the_next_message() -> None:
    call = {"id": "call_1", "name": "weather__get_weather", "args": {"city": "Oslo"}}
    history = [
        HumanMessage("Weather?"),
        AIMessage("", tool_calls=[call]),
        HumanMessage("Still there?"),
    ]
    repaired = close_open_tool_calls(history)
    assert [type(m).__name__ for m in repaired] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "HumanMessage",
    ]
    assert isinstance(repaired[2], ToolMessage) and repaired[2].tool_call_id == "call_1"
    answered = [*history[:2], ToolMessage("sunny", tool_call_id="call_1"), history[2]]
    assert close_open_tool_calls(answered) == answered


async def test_a_hub_that_cannot_be_reached_gives_the_model_an_error_text() -> None:
    async with HubClient(hub_url=f"http://127.0.0.1:{free_port()}", token="sb-x") as hub:
        outcome = await hub.call_tool(
            server="weather", tool="get_weather", arguments={"city": "Oslo"}, user="ana"
        )
    assert outcome.is_error and outcome.text.startswith("Could not reach the hub")


async def test_a_refused_call_gives_the_model_the_hubs_reason() -> None:
    seen: list[tuple[str, str, bytes]] = []

    async def refuse(request: Request) -> Response:
        seen.append((request.url.path, request.headers["authorization"], await request.body()))
        return JSONResponse({"detail": "weather needs review"}, status_code=409)

    app = Starlette(routes=[Route("/{path:path}", refuse, methods=["POST"])])
    with ThreadedServer(app) as server:
        async with HubClient(hub_url=server.base_url + "/", token="sb-app") as hub:
            outcome = await hub.call_tool(
                server="weather",
                tool="get_weather",
                arguments={"city": "Oslo"},
                user="ana",
                context={"conversation": "c-1", "agent": "forecaster", "trace": ""},
            )
    assert outcome.is_error
    assert outcome.text == "The hub refused the call to get_weather (409): weather needs review"
    [(path, authorization, body)] = seen
    assert path == "/api/mcp/servers/weather/tools/get_weather/call"
    assert authorization == "Bearer sb-app"
    assert body == (
        b'{"arguments":{"city":"Oslo"},"on_behalf_of":"ana",'
        b'"context":{"conversation":"c-1","agent":"forecaster"}}'
    )
