"""The agent runtime over real HTTP: a real hub (gateway and MCP registry), the scripted
upstream as the model, a real MCP server behind the hub, SQLite or PostgreSQL checkpoints
and traces sent to the hub, read from its SQLite database."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlmodel import Session, col, select

from agents.checkpoint import open_checkpointer
from agents.hub_client import HubClient
from agents.runtime import (
    AgentEvent,
    EventHandler,
    FinalAnswer,
    RunResult,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    run_agent,
)
from agents.spec import AgentSpec, ToolSpec
from agents.tracing.tracer import Tracer
from hub.core.db import get_engine
from hub.models.trace import TraceRun, TraceStep
from tests.conftest import RunningHub
from tests.support.mcp_server import McpTestServer
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.anyio

GET_WEATHER = "weather__get_weather"
FLAKY = "weather__flaky_forecast"
# The catalog's prices for "test-model" (tests/conftest.py).
INPUT_PRICE, OUTPUT_PRICE = 2.0, 8.0


@pytest.fixture
def weather_tools(hub: RunningHub) -> Iterator[tuple[ToolSpec, ...]]:
    """The weather MCP server, registered in the hub by its team; its tools as the hub
    describes them."""
    with McpTestServer() as server:
        token = hub.new_service("weather-team-bot", team="weather")
        with httpx.Client(
            base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            body = {
                "slug": "weather",
                "name": "Weather",
                "description": "Forecasts for office cities.",
                "team": "weather",
                "url": server.url,
            }
            registered = http.post("/api/mcp/servers", json=body)
            assert registered.status_code == 201, registered.text
            tools = registered.json()["tools"]
        yield tuple(
            ToolSpec(
                server="weather",
                name=t["name"],
                description=t["description"],
                input_schema=t["input_schema"],
            )
            for t in tools
        )


def _spec(tools: tuple[ToolSpec, ...] = (), **changes: Any) -> AgentSpec:
    fields: dict[str, Any] = {
        "slug": "weather-helper",
        "version": 3,
        "owner": "ana",
        "name": "Weather helper",
        "instructions": "You answer questions about the weather in office cities.",
        "model": "test-model",
        "tools": tools,
        "input_usd_per_million": INPUT_PRICE,
        "output_usd_per_million": OUTPUT_PRICE,
        **changes,
    }
    return AgentSpec(**fields)


class Recorder:
    def __init__(self) -> None:
        self.events: list[AgentEvent] = []

    async def __call__(self, event: AgentEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def _run(
    hub: RunningHub,
    spec: AgentSpec,
    message: str,
    *,
    conversation_id: str = "conv-1",
    checkpoint_url: str | None = None,
    on_event: EventHandler | None = None,
) -> RunResult:
    """One turn with a fresh checkpointer (on the hub's database) and tracer (sending to the
    hub), both closed after (as a process that stops would)."""
    async with (
        HubClient(hub_url=hub.url, token=hub.app_token) as client,
        open_checkpointer(checkpoint_url or hub.settings.sqlalchemy_url) as checkpointer,
        Tracer(hub.url, hub.app_token, flush_interval_s=0.05) as tracer,
    ):
        return await run_agent(
            spec=spec,
            hub=client,
            user="ana",
            conversation_id=conversation_id,
            message=message,
            checkpointer=checkpointer,
            tracer=tracer,
            on_event=on_event,
        )


def read_trace(hub: RunningHub, trace_id: str | None) -> tuple[TraceRun, list[TraceStep]]:
    assert trace_id is not None
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        run = session.get(TraceRun, trace_id)
        assert run is not None, "the run was not recorded"
        steps = session.exec(
            select(TraceStep).where(TraceStep.run_id == trace_id).order_by(col(TraceStep.seq))
        ).all()
        return run, list(steps)


def _cost(input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * INPUT_PRICE + output_tokens * OUTPUT_PRICE) / 1_000_000


async def test_an_agent_calls_a_tool_through_the_hub_and_answers_with_a_full_trace(
    hub: RunningHub, upstream: ScriptedUpstream, weather_tools: tuple[ToolSpec, ...]
) -> None:
    upstream.enqueue(tool_calls=[{"name": GET_WEATHER, "arguments": {"city": "Lisbon"}}])
    upstream.script(reply="Lisbon is clear at 16 degrees.")
    recorder = Recorder()

    result = await _run(hub, _spec(weather_tools), "Weather in Lisbon?", on_event=recorder)

    assert result.status == "ok" and not result.stopped_early
    assert result.text == "Lisbon is clear at 16 degrees."
    # The model saw the tools by their hub names, then the tool's result from the MCP server.
    first, second = upstream.requests
    offered = {tool["function"]["name"] for tool in first["tools"]}
    assert offered == {GET_WEATHER, FLAKY}
    assert first["messages"][0] == {
        "role": "system",
        "content": "You answer questions about the weather in office cities.",
    }
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool"
    assert json.loads(tool_message["content"]) == {
        "city": "Lisbon",
        "temperature_c": 16,
        "sky": "clear",
    }

    started, finished = recorder.of(ToolCallStarted), recorder.of(ToolCallFinished)
    assert [(e.server, e.tool, e.arguments) for e in started] == [
        ("weather", "get_weather", {"city": "Lisbon"})
    ]
    assert not finished[0].is_error and finished[0].latency_ms > 0
    assert "".join(e.text for e in recorder.of(TextDelta)) == result.text
    assert recorder.events.index(finished[0]) < recorder.events.index(recorder.of(TextDelta)[0])
    assert recorder.events[-1] == FinalAnswer(text=result.text, status="ok")

    run, steps = read_trace(hub, result.trace_id)
    assert [(s.seq, s.kind, s.name) for s in steps] == [
        (1, "model", "test-model"),
        (2, "tool", "weather/get_weather"),
        (3, "model", "test-model"),
    ]
    model_1, tool, model_2 = steps
    assert model_1.parent_id is None and model_2.parent_id is None
    assert tool.parent_id == model_1.id
    assert model_1.output["tool_calls"][0]["name"] == GET_WEATHER
    assert model_1.input[-1] == {"role": "user", "content": "Weather in Lisbon?"}
    assert tool.input == {"city": "Lisbon"} and "temperature_c" in tool.output
    assert model_2.output["content"] == result.text
    for step in (model_1, model_2):
        assert step.input_tokens > 0 and step.output_tokens > 0
        assert step.cost_usd == pytest.approx(_cost(step.input_tokens, step.output_tokens))
    assert all(s.latency_ms > 0 and s.ended_at >= s.started_at and s.error is None for s in steps)
    assert steps[0].started_at <= steps[1].started_at <= steps[2].started_at
    assert (run.status, run.error, run.steps) == ("ok", None, 3)
    assert (run.agent_slug, run.agent_version, run.agent_owner) == ("weather-helper", 3, "ana")
    assert (run.user, run.conversation_id) == ("ana", "conv-1")
    assert run.input_tokens == model_1.input_tokens + model_2.input_tokens
    assert run.output_tokens == model_1.output_tokens + model_2.output_tokens
    assert run.cost_usd == pytest.approx(_cost(run.input_tokens, run.output_tokens))
    assert run.ended_at is not None and run.ended_at >= run.started_at


async def test_a_failing_tool_reaches_the_model_which_answers_and_the_trace_keeps_the_failure(
    hub: RunningHub, upstream: ScriptedUpstream, weather_tools: tuple[ToolSpec, ...]
) -> None:
    upstream.enqueue(tool_calls=[{"name": FLAKY, "arguments": {"days": 3}}])
    upstream.script(reply="The forecast service is down; try again later.")
    recorder = Recorder()

    result = await _run(hub, _spec(weather_tools), "Forecast for 3 days?", on_event=recorder)

    assert result.status == "ok"
    assert result.text == "The forecast service is down; try again later."
    tool_message = upstream.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert "cannot forecast 3 days" in tool_message["content"]
    [finished] = recorder.of(ToolCallFinished)
    assert finished.is_error and "cannot forecast 3 days" in finished.result

    run, steps = read_trace(hub, result.trace_id)
    assert [s.kind for s in steps] == ["model", "tool", "model"]
    failed = steps[1]
    assert failed.name == "weather/flaky_forecast" and failed.input == {"days": 3}
    assert failed.output is None and "cannot forecast 3 days" in (failed.error or "")
    assert failed.parent_id == steps[0].id
    assert (run.status, run.steps) == ("ok", 3)


async def test_arguments_that_are_not_json_come_back_to_the_model_as_a_tool_error(
    hub: RunningHub, upstream: ScriptedUpstream, weather_tools: tuple[ToolSpec, ...]
) -> None:
    upstream.enqueue(tool_calls=[{"name": GET_WEATHER, "arguments": "{city: Lisbon"}])
    upstream.enqueue(tool_calls=[{"name": "weather__delete_city", "arguments": {}}])
    upstream.script(reply="Sorry, I could not get the weather.")

    result = await _run(hub, _spec(weather_tools), "Weather in Lisbon?")

    assert result.status == "ok" and result.text == "Sorry, I could not get the weather."
    bad_json = upstream.requests[1]["messages"][-1]
    assert bad_json["role"] == "tool" and "not a valid JSON object" in bad_json["content"]
    unknown = upstream.requests[2]["messages"][-1]
    assert "no tool named 'weather__delete_city'" in unknown["content"]
    assert GET_WEATHER in unknown["content"]
    _, steps = read_trace(hub, result.trace_id)
    assert [s.kind for s in steps] == ["model", "tool", "model", "tool", "model"]
    assert steps[1].error is not None and steps[3].error is not None


async def test_a_run_that_reaches_its_step_limit_stops_with_a_message_saying_so(
    hub: RunningHub, upstream: ScriptedUpstream, weather_tools: tuple[ToolSpec, ...]
) -> None:
    upstream.script(tool_calls=[{"name": GET_WEATHER, "arguments": {"city": "Oslo"}}])
    recorder = Recorder()
    spec = _spec(weather_tools, max_steps=2)

    result = await _run(hub, spec, "Weather in Oslo, forever?", on_event=recorder)

    assert result.status == "limit" and result.stopped_early
    assert "step limit of 2" in result.text
    assert upstream.hits == 2
    assert recorder.events[-1] == FinalAnswer(text=result.text, status="limit")
    run, steps = read_trace(hub, result.trace_id)
    assert [s.kind for s in steps] == ["model", "tool", "model"]
    assert (run.status, run.steps) == ("limit", 3)

    # The conversation stays one the model accepts: the call the limit cut off is answered.
    upstream.script(reply="Oslo is clear.")
    again = await _run(hub, spec, "Just once, then.")
    assert again.status == "ok"
    sent = upstream.requests[-1]["messages"]
    cut_off = [m for m in sent if m["role"] == "tool" and m["content"].startswith("Not run")]
    assert len(cut_off) == 1
    assert {"role": "assistant", "content": result.text} in sent


async def test_a_failing_model_ends_the_run_with_a_clear_error_and_a_complete_trace(
    hub: RunningHub, upstream: ScriptedUpstream, weather_tools: tuple[ToolSpec, ...]
) -> None:
    upstream.enqueue(tool_calls=[{"name": GET_WEATHER, "arguments": {"city": "Rome"}}])
    upstream.script(status=500, error_message="the provider is on fire")
    recorder = Recorder()

    result = await _run(hub, _spec(weather_tools), "Weather in Rome?", on_event=recorder)

    assert result.status == "error"
    assert result.text.startswith("The model test-model failed")
    assert "the provider is on fire" in result.text
    assert result.error == result.text
    assert recorder.events[-1] == FinalAnswer(text=result.text, status="error")
    run, steps = read_trace(hub, result.trace_id)
    assert [(s.kind, s.error is None) for s in steps] == [
        ("model", True),
        ("tool", True),
        ("model", False),
    ]
    assert "the provider is on fire" in (steps[2].error or "")
    assert steps[2].output is None and steps[2].input[-1]["role"] == "tool"
    assert (run.status, run.steps) == ("error", 3)
    assert "the provider is on fire" in (run.error or "")


async def test_a_run_past_its_time_limit_stops_with_a_message_and_the_next_turn_works(
    hub: RunningHub, upstream: ScriptedUpstream
) -> None:
    upstream.script(reply="Too late.", delay_s=1.5)

    result = await _run(hub, _spec(timeout_s=0.5), "Take your time.")

    assert result.status == "timeout"
    assert "time limit of 0.5 seconds" in result.text
    run, steps = read_trace(hub, result.trace_id)
    assert run.status == "timeout" and run.ended_at is not None
    assert [(s.kind, s.error) for s in steps] == [
        ("model", "cancelled: the run stopped during this step")
    ]

    upstream.script(reply="Quick answer.")
    again = await _run(hub, _spec(), "Quickly, then.")
    assert (again.status, again.text) == ("ok", "Quick answer.")
    sent = [(m["role"], m["content"]) for m in upstream.requests[-1]["messages"][1:]]
    assert sent == [("user", "Take your time."), ("user", "Quickly, then.")]


async def test_a_cancelled_run_is_kept_in_its_trace_as_cancelled(
    hub: RunningHub, upstream: ScriptedUpstream
) -> None:
    upstream.script(reply="one two three four five six", chunk_delay_s=0.3)
    streaming = asyncio.Event()

    async def on_event(event: AgentEvent) -> None:
        if isinstance(event, TextDelta):
            streaming.set()

    run_task = asyncio.create_task(
        _run(hub, _spec(), "Long question.", conversation_id="c-stop", on_event=on_event)
    )
    with anyio.fail_after(10):
        await streaming.wait()  # the stop button is pressed while the answer streams in
    run_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run_task

    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        [run] = session.exec(select(TraceRun).where(TraceRun.conversation_id == "c-stop")).all()
    _, steps = read_trace(hub, run.id)
    assert (run.status, run.error) == ("cancelled", "the run was cancelled")
    assert [(s.kind, s.error) for s in steps] == [
        ("model", "cancelled: the run stopped during this step")
    ]


async def test_a_conversation_continues_with_its_context_after_a_restart(
    hub: RunningHub, upstream: ScriptedUpstream, database_url: str, tmp_path: Path
) -> None:
    checkpoints = database_url
    spec = _spec()
    upstream.script(reply="Nice to meet you, Ada.")
    first = await _run(hub, spec, "My name is Ada.", checkpoint_url=checkpoints)
    assert first.status == "ok"

    # A new checkpointer (and graph, and runner) on the same database, as after a restart.
    upstream.script(reply="Your name is Ada.")
    second = await _run(hub, spec, "What is my name?", checkpoint_url=checkpoints)
    assert second.text == "Your name is Ada."
    sent = upstream.requests[-1]["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("system", spec.instructions),
        ("user", "My name is Ada."),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "What is my name?"),
    ]

    other = await _run(hub, spec, "Who am I?", conversation_id="conv-2", checkpoint_url=checkpoints)
    assert other.status == "ok"
    assert [m["content"] for m in upstream.requests[-1]["messages"][1:]] == ["Who am I?"]


async def test_an_agent_with_tools_on_a_model_that_cannot_call_them_says_what_it_needs(
    hub: RunningHub, upstream: ScriptedUpstream, weather_tools: tuple[ToolSpec, ...]
) -> None:
    upstream.script(reply="Lisbon is sunny, I looked.")
    events = Recorder()
    spec = _spec(weather_tools, model_calls_tools=False)
    result = await _run(hub, spec, "Weather in Lisbon?", on_event=events)

    assert result.status == "error"
    assert result.text.startswith("I need a model that can call tools, and test-model cannot")
    assert "model catalog" in result.text and result.text.count(". ") == 0
    assert [e.text for e in events.of(FinalAnswer)] == [result.text]
    assert upstream.hits == 0, "the model was called anyway"
    run, steps = read_trace(hub, result.trace_id)
    assert (run.status, run.error, steps) == ("error", result.text, [])

    # The same agent without tools runs on that model as before.
    plain = await _run(hub, _spec(model_calls_tools=False), "Hello?", conversation_id="conv-2")
    assert (plain.status, plain.text, upstream.hits) == ("ok", "Lisbon is sunny, I looked.", 1)
