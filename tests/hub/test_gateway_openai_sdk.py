"""Clients written for OpenAI work against the gateway by changing only base_url and key."""

import json

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI, OpenAI

from tests.conftest import RunningHub
from tests.support.gateway import usage_rows
from tests.support.upstream import ScriptedUpstream

REPLY = "Switchboard routes every call, byte for byte: naïve café ✓."
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def _client(hub: RunningHub, token: str) -> OpenAI:
    return OpenAI(base_url=hub.url + "/v1", api_key=token, max_retries=0)


def test_the_openai_sdk_gets_a_normal_completion(hub: RunningHub, upstream: ScriptedUpstream):
    upstream.script(reply=REPLY)
    token = hub.new_service("sdk-user")

    completion = _client(hub, token).chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hello there"}]
    )

    assert completion.choices[0].message.content == REPLY
    assert completion.usage is not None and completion.usage.prompt_tokens == 2
    # The upstream saw its own model id and the provider key, never the service token.
    assert upstream.requests[-1]["model"] == "scripted-model"
    assert upstream.headers[-1]["authorization"] == "Bearer sk-test-provider-key"


def test_the_openai_sdk_gets_a_streamed_completion_with_usage(
    hub: RunningHub, upstream: ScriptedUpstream
):
    upstream.script(reply=REPLY)
    token = hub.new_service("sdk-streamer")

    stream = _client(hub, token).chat.completions.create(
        model="test-model",
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(REPLY.split())


def test_a_stream_without_include_usage_has_no_usage_chunk(
    hub: RunningHub, upstream: ScriptedUpstream
):
    upstream.script(reply=REPLY)
    stream = _client(hub, hub.new_service("plain-streamer")).chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)

    assert all(chunk.choices for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == REPLY
    # The gateway still asked the upstream for usage, to bill the call.
    assert upstream.requests[-1]["stream_options"] == {"include_usage": True}


def test_the_openai_sdk_gets_a_tool_call(hub: RunningHub, upstream: ScriptedUpstream):
    upstream.script(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    client = _client(hub, hub.new_service("tool-user"))

    completion = client.chat.completions.create(
        model="test-model",
        messages=[{"role": "user", "content": "weather in Oslo?"}],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )

    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert upstream.requests[-1]["tools"] == [WEATHER_TOOL]
    assert upstream.requests[-1]["tool_choice"] == "auto"


def test_response_format_is_passed_through(hub: RunningHub, upstream: ScriptedUpstream):
    upstream.script(reply='{"ok": true}')
    _client(hub, hub.new_service("json-user")).chat.completions.create(
        model="test-model",
        messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_object"},
    )
    assert upstream.requests[-1]["response_format"] == {"type": "json_object"}


@pytest.mark.anyio
async def test_the_async_openai_sdk_streams(hub: RunningHub, upstream: ScriptedUpstream):
    upstream.script(reply=REPLY)
    client = AsyncOpenAI(base_url=hub.url + "/v1", api_key=hub.new_service("async"), max_retries=0)
    stream = await client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream])
    await client.close()
    assert text == REPLY


def test_langchain_chat_openai_gets_completions_and_tool_calls(
    hub: RunningHub, upstream: ScriptedUpstream
):
    token = hub.new_service("langchain-user")
    llm = ChatOpenAI(model="test-model", base_url=hub.url + "/v1", api_key=token, max_retries=0)

    upstream.script(reply=REPLY)
    assert llm.invoke("hello").content == REPLY

    streamed = [chunk for chunk in llm.stream("hello")]
    assert "".join(str(c.content) for c in streamed) == REPLY
    assert all(isinstance(c, AIMessageChunk) for c in streamed)

    upstream.script(tool_calls=[{"name": "get_weather", "arguments": {"city": "Lima"}}])
    message = llm.bind_tools([WEATHER_TOOL]).invoke("weather in Lima?")
    assert message.tool_calls[0]["name"] == "get_weather"
    assert message.tool_calls[0]["args"] == {"city": "Lima"}


# The second answer says "[DONE]" itself: the usage still comes last.
@pytest.mark.parametrize("reply", [REPLY, "Write [DONE] when you are done, then stop."])
def test_a_stream_gets_the_usage_it_is_billed_for_when_the_provider_reports_none(
    hub: RunningHub, upstream: ScriptedUpstream, reply: str
):
    # Like llama.cpp's server, the upstream sends no usage in streams, even when asked.
    upstream.script(reply=reply, usage_in_stream=False)
    stream = _client(hub, hub.new_service("sdk-counter")).chat.completions.create(
        model="test-model",
        messages=[{"role": "user", "content": "count my tokens, please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert [c for c in chunks if c.usage is not None] == [last]
    (row,) = usage_rows(hub.settings, "sdk-counter")
    assert row.usage_estimated and row.input_tokens > 0 and row.output_tokens > 0
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (
        row.input_tokens,
        row.output_tokens,
    )
    assert last.usage.total_tokens == row.input_tokens + row.output_tokens
    assert last.model == "test-model"


def test_langchain_streaming_with_usage_gets_what_the_call_is_billed_for(
    hub: RunningHub, upstream: ScriptedUpstream
):
    upstream.script(reply=REPLY, usage_in_stream=False)
    llm = ChatOpenAI(
        model="test-model",
        base_url=hub.url + "/v1",
        api_key=hub.new_service("langchain-counter"),
        max_retries=0,
        stream_usage=True,
    )
    message: AIMessageChunk | None = None
    for chunk in llm.stream("count my tokens, please"):
        message = chunk if message is None else message + chunk

    assert message is not None and message.content == REPLY
    usage = message.usage_metadata
    (row,) = usage_rows(hub.settings, "langchain-counter")
    assert row.input_tokens > 0 and row.output_tokens > 0
    assert usage is not None
    assert (usage["input_tokens"], usage["output_tokens"]) == (row.input_tokens, row.output_tokens)
    assert usage["total_tokens"] == row.input_tokens + row.output_tokens
