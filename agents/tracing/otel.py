"""Optional export of traces as OpenTelemetry spans over OTLP/HTTP, in the GenAI semantic
conventions: an `invoke_agent` span per run, with a `chat` span per model call and an
`execute_tool` span per tool call under it.

Spans are made when a step ends, with the step's own start and end times, and exported by
the SDK's batch processor in its own thread. The SDK and exporter are imported only when an
endpoint is set.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from agents.tracing.records import RunRecord, StepRecord

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from agents.spec import AgentSpec

__all__ = ["OtlpExporter"]

SERVICE_NAME = "switchboard-agents"


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1000


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a collector's base endpoint (`http://host:4318`)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


class OtlpExporter:
    def __init__(self, endpoint: str, headers: dict[str, str] | None = None) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # A provider of our own, not the process-wide one: other code's telemetry settings
        # neither reach nor are changed by the agents' export.
        self._provider: TracerProvider = TracerProvider(
            resource=Resource.create({"service.name": SERVICE_NAME})
        )
        exporter = OTLPSpanExporter(endpoint=traces_url(endpoint), headers=headers)
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self._provider.get_tracer("agents.tracing")

    def run_started(self, row: RunRecord, spec: "AgentSpec") -> "Span":
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.id": spec.slug,
            "gen_ai.agent.name": spec.name,
            "gen_ai.request.model": spec.model,
            "switchboard.trace_id": row.id,
            "switchboard.user": row.user,
        }
        if spec.version is not None:
            attributes["gen_ai.agent.version"] = str(spec.version)
        if row.conversation_id is not None:
            attributes["gen_ai.conversation.id"] = row.conversation_id
        return self._tracer.start_span(
            f"invoke_agent {spec.name}", attributes=attributes, start_time=_ns(row.started_at)
        )

    def step_ended(self, run_span: "Span", step: StepRecord, spec: "AgentSpec") -> None:
        from opentelemetry.trace import SpanKind, StatusCode, set_span_in_context

        attributes: dict[str, Any] = {"switchboard.step_id": step.id, "switchboard.seq": step.seq}
        if step.kind == "model":
            name = f"chat {step.name}"
            attributes |= {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": step.name,
                "gen_ai.request.max_tokens": spec.max_tokens,
                "gen_ai.usage.input_tokens": step.input_tokens,
                "gen_ai.usage.output_tokens": step.output_tokens,
                "switchboard.cost_usd": step.cost_usd,
            }
            kind = SpanKind.CLIENT
        else:
            server, _, tool = step.name.partition("/")
            name = f"execute_tool {tool}"
            attributes |= {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.type": "function",
                "switchboard.mcp_server": server,
            }
            kind = SpanKind.INTERNAL
        span = self._tracer.start_span(
            name,
            context=set_span_in_context(run_span),
            kind=kind,
            attributes=attributes,
            start_time=_ns(step.started_at),
        )
        if step.error is not None:
            span.set_attribute("error.type", _error_type(step))
            span.set_status(StatusCode.ERROR, step.error)
        span.end(end_time=_ns(step.ended_at))

    def run_ended(self, run_span: "Span", row: RunRecord) -> None:
        from opentelemetry.trace import StatusCode

        run_span.set_attributes(
            {
                "gen_ai.usage.input_tokens": row.input_tokens,
                "gen_ai.usage.output_tokens": row.output_tokens,
                "switchboard.cost_usd": row.cost_usd,
                "switchboard.status": row.status,
                "switchboard.steps": row.steps,
            }
        )
        if row.status != "ok":
            run_span.set_attribute("error.type", row.status)
            run_span.set_status(StatusCode.ERROR, row.error or row.status)
        run_span.end(end_time=_ns(row.ended_at) if row.ended_at else None)

    def shutdown(self) -> None:
        """Export what is left and stop (blocking: call it in a thread)."""
        self._provider.shutdown()


def _error_type(step: StepRecord) -> str:
    if (step.error or "").startswith("cancelled"):
        return "cancelled"
    return "tool_error" if step.kind == "tool" else "model_error"
