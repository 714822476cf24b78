"""A chat with a model is an agent with no instructions of its own: the hub makes its run spec
for the person (the model, its prices, the tools of the servers they switched on) and the
agent runtime runs it, streamed and traced, over real HTTP against a real hub and MCP server."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from langchain_core.messages import AIMessage, HumanMessage
from sqlmodel import Session

from agents.hub_client import HubClient, HubError
from agents.runtime import AgentEvent, AgentRunner, AnsweredBy, TextDelta, ToolCallFinished
from agents.spec import MODEL_CHAT, AgentSpec
from hub.core.config import Settings
from hub.core.db import get_engine
from hub.models.user import User
from hub.services.users import create_user, get_user
from tests.agents.test_runtime import Recorder, read_trace
from tests.conftest import RunningHub, with_spare_model
from tests.support.analyst import analyst_runner
from tests.support.mcp_server import McpTestServer
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.anyio

SPARE_CHAT_MAX_TOKENS = 300


@pytest.fixture
def hub_settings(
    hub_settings: Settings, tmp_path: Path, upstream: ScriptedUpstream, spare: ScriptedUpstream
) -> Settings:
    """test-model, which falls back to spare-model; a chat with spare-model asks for at most
    SPARE_CHAT_MAX_TOKENS tokens per answer."""
    settings = with_spare_model(hub_settings, tmp_path, upstream, spare)
    catalog = yaml.safe_load(settings.catalog_path.read_text())
    catalog["models"][1]["chat_max_tokens"] = SPARE_CHAT_MAX_TOKENS
    settings.catalog_path.write_text(yaml.safe_dump(catalog))
    return settings


@pytest.fixture
def ana(hub: RunningHub) -> User:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(session=session, username="ana", password="pw-ana")
        user = get_user(session=session, username="ana")
        assert user is not None
        return user


@pytest.fixture
async def client(hub: RunningHub) -> AsyncIterator[HubClient]:
    client = HubClient(hub_url=hub.url, token=hub.app_token)
    yield client
    await client.aclose()


@pytest.fixture
def weather(hub: RunningHub) -> Iterator[list[dict[str, Any]]]:
    """The weather MCP server registered by its team, and a second one disabled; the tools
    the hub lists for the first."""
    with McpTestServer() as server, McpTestServer() as other:
        token = hub.new_service("weather-team-bot", team="weather")
        with httpx.Client(
            base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            for slug, url in (("weather", server.url), ("old-weather", other.url)):
                body = {"slug": slug, "name": slug, "team": "weather", "url": url}
                registered = http.post("/api/mcp/servers", json=body)
                assert registered.status_code == 201, registered.text
            assert http.post("/api/mcp/servers/old-weather/disable").status_code == 200
            tools: list[dict[str, Any]] = http.get("/api/mcp/servers/weather").json()["tools"]
        yield tools


async def _wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    with anyio.fail_after(timeout_s):
        while True:
            if condition():
                return
            await anyio.sleep(0.02)


async def test_the_spec_is_the_persons_with_the_tools_of_the_active_servers_switched_on(
    client: HubClient, ana: User, weather: list[dict[str, Any]]
) -> None:
    spec = await client.model_chat_spec(
        model="test-model", servers=["weather", "old-weather"], user="ana"
    )

    assert spec.is_model_chat and spec.slug == MODEL_CHAT and not spec.instructions
    assert (spec.model, spec.name, spec.owner) == ("test-model", "test-model", "ana")
    assert (spec.owner_kind, spec.owner_id) == ("user", ana.key)
    assert (spec.user_kind, spec.user_id) == ("user", ana.key)
    assert [(tool.server, tool.name) for tool in spec.tools] == [
        ("weather", tool["name"]) for tool in weather
    ]
    assert spec.unavailable_servers == ["old-weather"]
    assert spec.model_calls_tools and spec.max_tokens is None

    nothing_on = await client.model_chat_spec(model="test-model", servers=[], user="ana")
    assert nothing_on.tools == ()


async def test_an_unknown_model_or_person_is_refused_in_the_hubs_words(
    client: HubClient, ana: User
) -> None:
    with pytest.raises(HubError, match="There is no model 'no-such-model' in the catalog"):
        await client.model_chat_spec(model="no-such-model", servers=[], user="ana")
    with pytest.raises(HubError, match="Cannot chat with test-model"):
        await client.model_chat_spec(model="test-model", servers=[], user="nobody-here")


async def _turn(
    hub: RunningHub, runner: AgentRunner, spec: AgentSpec, message: str, **options: Any
) -> tuple[Any, Recorder]:
    recorder = Recorder()
    result = await runner.run(
        spec=spec,
        user="ana",
        conversation_id="chat-1",
        message=message,
        on_event=recorder,
        **options,
    )
    return result, recorder


async def test_a_chat_streams_keeps_its_history_calls_tools_and_is_traced_as_the_persons(
    hub: RunningHub,
    client: HubClient,
    ana: User,
    upstream: ScriptedUpstream,
    weather: list[dict[str, Any]],
) -> None:
    spec = await client.model_chat_spec(model="test-model", servers=["weather"], user="ana")
    upstream.enqueue(tool_calls=[{"name": "weather__get_weather", "arguments": {"city": "Oslo"}}])
    upstream.script(reply="one two three")
    earlier = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]

    async with analyst_runner(hub) as runner:
        result, recorder = await _turn(
            hub, runner, spec, "count", earlier=[HumanMessage("hi"), AIMessage("hello")]
        )

    assert result.status == "ok" and result.text == "one two three"
    assert "".join(delta.text for delta in recorder.of(TextDelta)) == "one two three"
    # No instructions of its own: the model sees the conversation, and the tool's answer.
    first, second = upstream.requests
    assert first["messages"] == [*earlier, {"role": "user", "content": "count"}]
    assert first["stream"] is True and "max_completion_tokens" not in first
    assert [tool["function"]["name"] for tool in first["tools"]] == [
        f"weather__{tool['name']}" for tool in weather
    ]
    [finished] = recorder.of(ToolCallFinished)
    assert (finished.server, finished.tool, finished.is_error) == ("weather", "get_weather", False)
    assert second["messages"][-1]["role"] == "tool"

    run, steps = read_trace(hub, result.trace_id)
    assert (run.agent_slug, run.agent_version, run.status) == ("", None, "ok")
    assert (run.user, run.user_id, run.agent_owner_id) == ("ana", ana.key, ana.key)
    assert [(step.kind, step.name) for step in steps] == [
        ("model", "test-model"),
        ("tool", "weather/get_weather"),
        ("model", "test-model"),
    ]


async def test_a_fallback_model_that_answers_is_named(
    hub: RunningHub,
    client: HubClient,
    ana: User,
    upstream: ScriptedUpstream,
    spare: ScriptedUpstream,
) -> None:
    spec = await client.model_chat_spec(model="test-model", servers=[], user="ana")
    upstream.script(status=503, error_message="region down")
    spare.script(reply="The spare model answers.")
    async with analyst_runner(hub) as runner:
        result, recorder = await _turn(hub, runner, spec, "Who is answering?")
    assert result.text == "The spare model answers."
    assert recorder.of(AnsweredBy) == [AnsweredBy(model="spare-model", asked="test-model")]

    upstream.script(reply="Back to normal.")
    async with analyst_runner(hub) as runner:
        result, recorder = await _turn(hub, runner, spec, "And now?")
    assert result.text == "Back to normal." and recorder.of(AnsweredBy) == []


async def test_a_chat_asks_for_the_answer_length_its_catalog_entry_sets(
    hub: RunningHub, client: HubClient, ana: User, spare: ScriptedUpstream
) -> None:
    spec = await client.model_chat_spec(model="spare-model", servers=[], user="ana")
    assert spec.max_tokens == SPARE_CHAT_MAX_TOKENS
    spare.script(reply="Short and done.")

    async with analyst_runner(hub) as runner:
        result, _ = await _turn(hub, runner, spec, "Say something short.")

    assert result.text == "Short and done."
    # OpenAI's current name of the field, which LangChain sends.
    assert spare.requests[-1]["max_completion_tokens"] == SPARE_CHAT_MAX_TOKENS


async def test_an_upstream_failure_ends_the_turn_with_the_gateways_message(
    hub: RunningHub, client: HubClient, ana: User, upstream: ScriptedUpstream
) -> None:
    spec = await client.model_chat_spec(model="test-model", servers=[], user="ana")
    upstream.script(status=400, error_message="context length exceeded")
    async with analyst_runner(hub) as runner:
        result, _ = await _turn(hub, runner, spec, "hi")
    assert result.status == "error" and "context length exceeded" in result.text
    run, _ = read_trace(hub, result.trace_id)
    assert run.status == "error" and "context length exceeded" in (run.error or "")


async def test_stopping_a_turn_cancels_the_upstream_call(
    hub: RunningHub, client: HubClient, ana: User, upstream: ScriptedUpstream
) -> None:
    spec = await client.model_chat_spec(model="test-model", servers=[], user="ana")
    upstream.script(reply=" ".join(["word"] * 200), chunk_delay_s=0.05)
    async with analyst_runner(hub) as runner:
        started = asyncio.Event()

        async def first_token(event: AgentEvent) -> None:
            if isinstance(event, TextDelta):
                started.set()

        turn = asyncio.create_task(
            runner.run(
                spec=spec, user="ana", conversation_id="chat-1", message="go", on_event=first_token
            )
        )
        await asyncio.wait_for(started.wait(), timeout=10)
        turn.cancel()
        with pytest.raises(asyncio.CancelledError):
            await turn

    await _wait_until(lambda: upstream.cancelled_streams == 1)
    assert upstream.completed_streams == 0


async def test_a_reply_cut_off_mid_answer_goes_back_to_the_model_where_the_checkpoint_lacks_it(
    hub: RunningHub, client: HubClient, ana: User, upstream: ScriptedUpstream
) -> None:
    spec = await client.model_chat_spec(model="test-model", servers=[], user="ana")
    upstream.script(reply=" ".join(["word"] * 200), chunk_delay_s=0.05)
    async with analyst_runner(hub) as runner:
        # The turn stops mid-answer, as it does when its chat process dies.
        streaming = asyncio.Event()

        async def first_token(event: AgentEvent) -> None:
            if isinstance(event, TextDelta):
                streaming.set()

        turn = asyncio.create_task(
            runner.run(
                spec=spec, user="ana", conversation_id="chat-1", message="go", on_event=first_token
            )
        )
        await asyncio.wait_for(streaming.wait(), timeout=10)
        turn.cancel()
        with pytest.raises(asyncio.CancelledError):
            await turn

    upstream.script(reply="Carrying on.")
    async with analyst_runner(hub) as runner:
        await _turn(hub, runner, spec, "go on", cut_off="word word")
        # This turn's answer is in the checkpoint: a cut-off reply said again changes nothing.
        await _turn(hub, runner, spec, "and then?", cut_off="word word")

    first_turn = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "word word"},
        {"role": "user", "content": "go on"},
    ]
    assert upstream.requests[-2]["messages"] == first_turn
    assert upstream.requests[-1]["messages"] == [
        *first_turn,
        {"role": "assistant", "content": "Carrying on."},
        {"role": "user", "content": "and then?"},
    ]


def test_the_route_wants_a_caller_and_a_reasonable_list_of_servers(hub: RunningHub) -> None:
    signed_out = httpx.get(f"{hub.url}/api/model-chat/run-spec", params={"model": "test-model"})
    assert signed_out.status_code == 401
    servers = [f"server-{n}" for n in range(51)]
    with httpx.Client(
        base_url=hub.url, headers={"Authorization": f"Bearer {hub.app_token}"}, timeout=30
    ) as http:
        too_many = http.get(
            "/api/model-chat/run-spec", params={"model": "test-model", "server": servers}
        )
        assert too_many.status_code == 422
        assert "at most 50 MCP servers" in too_many.json()["detail"]
        no_model = http.get("/api/model-chat/run-spec")
        assert no_model.status_code == 422 and "model" in no_model.text
