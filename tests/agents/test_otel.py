"""Traces exported as OpenTelemetry spans (GenAI semantic conventions) to a small OTLP/HTTP
receiver on 127.0.0.1, from a real run: the scripted upstream as the model, a local tool,
and the hub taking the same traces."""

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agents.hub_client import HubClient, ToolOutcome
from agents.runtime import AgentRunner
from agents.spec import AgentSpec, ToolSpec
from agents.tracing.tracer import Tracer
from tests.conftest import RunningHub
from tests.support.servers import ThreadedServer
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.anyio


class OtlpReceiver:
    """Records every OTLP/HTTP trace export it is sent."""

    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        self.content_types: list[str] = []
        self._server = ThreadedServer(
            Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])])
        )

    async def _traces(self, request: Request) -> Response:
        self.content_types.append(request.headers.get("content-type", ""))
        self.exports.append(ExportTraceServiceRequest.FromString(await request.body()))
        body = ExportTraceServiceResponse().SerializeToString()
        return Response(body, media_type="application/x-protobuf")

    def spans(self) -> list[Any]:
        return [
            span
            for export in self.exports
            for resource in export.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def __enter__(self) -> "OtlpReceiver":
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(None, None, None)

    @property
    def url(self) -> str:
        return self._server.base_url


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as server:
        yield server


def _attributes(span: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in span.attributes:
        value = item.value
        values[item.key] = getattr(value, value.WhichOneof("value"))
    return values


class Forecast:
    async def call_tool(
        self,
        *,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        user: str,
        context: Mapping[str, str] | None = None,
    ) -> ToolOutcome:
        return ToolOutcome(f"{arguments['city']}: clear, 16 degrees", False)


async def test_a_traced_run_is_exported_as_genai_spans_when_an_endpoint_is_set(
    receiver: OtlpReceiver, upstream: ScriptedUpstream, hub: RunningHub
) -> None:
    spec = AgentSpec(
        slug="weather-helper",
        version=2,
        owner="ana",
        name="Weather helper",
        instructions="Answer about the weather.",
        model="scripted-model",
        tools=(
            ToolSpec(
                server="weather",
                name="get_weather",
                description="Weather now.",
                input_schema={"type": "object"},
            ),
        ),
        input_usd_per_million=2.0,
        output_usd_per_million=8.0,
    )
    upstream.enqueue(tool_calls=[{"name": "weather__get_weather", "arguments": {"city": "Oslo"}}])
    upstream.script(reply="Oslo is clear.")
    # The scripted upstream stands in for the hub's gateway here.
    async with (
        HubClient(hub_url=upstream.url.removesuffix("/v1"), token="sb-test") as gateway,
        Tracer(hub.url, hub.app_token, otlp_endpoint=receiver.url) as tracer,
    ):
        runner = AgentRunner(
            hub=gateway, checkpointer=InMemorySaver(), tracer=tracer, tool_caller=Forecast()
        )
        result = await runner.run(
            spec=spec, user="ana", conversation_id="conv-9", message="Weather in Oslo?"
        )
    assert result.status == "ok"

    assert receiver.content_types and all(
        t == "application/x-protobuf" for t in receiver.content_types
    )
    spans = {span.name: span for span in receiver.spans()}
    assert set(spans) == {
        "invoke_agent Weather helper",
        "chat scripted-model",
        "execute_tool get_weather",
    }
    assert len(receiver.spans()) == 4  # two model calls
    run = spans["invoke_agent Weather helper"]
    run_attributes = _attributes(run)
    assert run_attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run_attributes["gen_ai.agent.id"] == "weather-helper"
    assert run_attributes["gen_ai.conversation.id"] == "conv-9"
    assert run_attributes["switchboard.trace_id"] == result.trace_id
    assert run_attributes["switchboard.status"] == "ok"
    chats = [s for s in receiver.spans() if s.name == "chat scripted-model"]
    for chat in chats:
        attributes = _attributes(chat)
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.request.model"] == "scripted-model"
        assert attributes["gen_ai.usage.input_tokens"] > 0
        assert attributes["gen_ai.usage.output_tokens"] > 0
        assert chat.parent_span_id == run.span_id and chat.trace_id == run.trace_id
        assert run.start_time_unix_nano <= chat.start_time_unix_nano < chat.end_time_unix_nano
    assert run_attributes["gen_ai.usage.input_tokens"] == sum(
        _attributes(c)["gen_ai.usage.input_tokens"] for c in chats
    )
    tool = _attributes(spans["execute_tool get_weather"])
    assert tool["gen_ai.operation.name"] == "execute_tool"
    assert tool["gen_ai.tool.name"] == "get_weather"
    assert tool["switchboard.mcp_server"] == "weather"
    assert spans["execute_tool get_weather"].parent_span_id == run.span_id


async def test_failed_steps_and_runs_stopped_early_are_exported_as_errors(
    receiver: OtlpReceiver, hub: RunningHub
) -> None:
    spec = AgentSpec(
        slug="stubborn",
        version=None,
        owner="bo",
        name="Stubborn",
        instructions="",
        model="m",
        tools=(),
    )
    async with Tracer(hub.url, hub.app_token, otlp_endpoint=receiver.url + "/v1/traces") as tracer:
        trace = tracer.start_run(spec=spec, user="bo", conversation_id=None)
        step = trace.begin_step("tool", "weather/flaky_forecast")
        trace.end_tool_step(step, arguments={"days": 3}, result=None, error="the service is down")
        trace.finish("limit", "stopped at its step limit of 1")

    spans = {span.name: span for span in receiver.spans()}
    tool, run = spans["execute_tool flaky_forecast"], spans["invoke_agent Stubborn"]
    assert _attributes(tool)["error.type"] == "tool_error"
    assert tool.status.message == "the service is down"
    assert _attributes(run)["error.type"] == "limit"
    assert run.status.message == "stopped at its step limit of 1"
    assert run.status.code == tool.status.code == 2  # STATUS_CODE_ERROR
