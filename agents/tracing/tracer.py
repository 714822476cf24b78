"""Traces of agent runs, sent to the hub (`POST /api/traces/batch`), which keeps them.

Recording never waits for the hub: a run and its steps are queued in memory and sent in
batches over HTTP (agents/tracing/sender.py) every `flush_interval_s`, and on `flush()`. The
run is sent when it starts (status "running", so its steps can refer to it) and again, with
its status and totals, when it ends; the hub upserts runs by id, so the two can share a
batch. What the hub cannot take now is kept for the next flush, within `max_pending` records.
`await tracer.close()` first ends any run still open as an error, then sends what is queued.
With `otlp_endpoint`, each run is also exported as OpenTelemetry spans.
"""

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx
from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages

from agents.tracing.otel import OtlpExporter
from agents.tracing.records import MAX_ERROR, MAX_STEP_NAME, RunRecord, StepRecord
from agents.tracing.sender import TraceSender

if TYPE_CHECKING:  # agents.runtime imports this package
    from opentelemetry.trace import Span

    from agents.spec import AgentSpec

__all__ = ["OpenStep", "RunTrace", "Tracer"]

_PROCESS_STOPPED = "the process stopped before the run ended"
# A display name as the hub's columns hold it.
_MAX_NAME = 100


def _now() -> datetime:
    return datetime.now(UTC)


def _clip(error: str | None) -> str | None:
    return None if error is None else error[:MAX_ERROR]


@dataclass(slots=True)
class OpenStep:
    """A step under way: its identity and when it started."""

    id: str
    seq: int
    kind: str
    name: str
    parent_id: str | None
    started_at: datetime
    started: float


class RunTrace:
    """One run's trace. Steps are numbered (`seq`) in the order they start; a step is queued
    to send when it ends, failed or not."""

    def __init__(
        self, tracer: "Tracer", *, spec: "AgentSpec", user: str, conversation_id: str | None
    ) -> None:
        self.id = str(uuid.uuid4())
        self._tracer = tracer
        self._spec = spec
        self._seq = 0
        self._row = RunRecord(
            id=self.id,
            agent_slug=spec.slug,
            agent_version=spec.version,
            agent_owner=spec.owner[:_MAX_NAME],
            agent_owner_kind=spec.owner_kind,
            agent_owner_id=spec.owner_id,
            conversation_id=conversation_id,
            user=user[:_MAX_NAME],
            user_kind=spec.user_kind,
            user_id=spec.user_id,
            started_at=_now(),
            ended_at=None,
            status="running",
            error=None,
            steps=0,
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
        )
        tracer._sender.add_run(self._row.model_copy())
        self._span: Span | None = None
        if tracer._otlp is not None:
            self._span = tracer._otlp.run_started(self._row, spec)

    @property
    def finished(self) -> bool:
        return self._row.ended_at is not None

    @property
    def status(self) -> str:
        return self._row.status

    def begin_step(self, kind: str, name: str, *, parent_id: str | None = None) -> OpenStep:
        self._seq += 1
        return OpenStep(
            id=str(uuid.uuid4()),
            seq=self._seq,
            kind=kind,
            name=name,
            parent_id=parent_id,
            started_at=_now(),
            started=time.perf_counter(),
        )

    def end_model_step(
        self,
        step: OpenStep,
        *,
        request: Sequence[BaseMessage],
        response: AIMessage | None,
        error: str | None = None,
    ) -> None:
        """A model call: the messages sent (OpenAI-style), the message that came back (its
        text and tool calls), tokens and cost from its usage."""
        output: dict[str, Any] | None = None
        input_tokens = output_tokens = 0
        if response is not None:
            output = {
                "content": response.content,
                "tool_calls": [
                    {"id": c["id"], "name": c["name"], "arguments": c["args"]}
                    for c in response.tool_calls
                ],
            }
            if response.invalid_tool_calls:
                output["invalid_tool_calls"] = [
                    {"id": c["id"], "name": c["name"], "arguments": c["args"], "error": c["error"]}
                    for c in response.invalid_tool_calls
                ]
            if response.usage_metadata:
                input_tokens = response.usage_metadata["input_tokens"]
                output_tokens = response.usage_metadata["output_tokens"]
        self._end(
            step,
            input=convert_to_openai_messages(list(request)),
            output=output,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            error=error,
        )

    def end_tool_step(
        self, step: OpenStep, *, arguments: Any, result: str | None, error: str | None = None
    ) -> None:
        self._end(step, input=arguments, output=result, error=error)

    def _end(
        self,
        step: OpenStep,
        *,
        input: Any,
        output: Any,
        input_tokens: int = 0,
        output_tokens: int = 0,
        error: str | None,
    ) -> None:
        latency_ms = (time.perf_counter() - step.started) * 1000
        cost = self._spec.cost_usd(input_tokens, output_tokens)
        row = self._row
        row.steps += 1
        row.input_tokens += input_tokens
        row.output_tokens += output_tokens
        row.cost_usd += cost
        step_row = StepRecord(
            id=step.id,
            run_id=self.id,
            parent_id=step.parent_id,
            seq=step.seq,
            kind=step.kind,
            name=step.name[:MAX_STEP_NAME],
            started_at=step.started_at,
            ended_at=_now(),
            latency_ms=latency_ms,
            input=input,
            output=output,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost,
            error=_clip(error),
        )
        self._tracer._sender.add_step(step_row)
        if self._span is not None and self._tracer._otlp is not None:
            self._tracer._otlp.step_ended(self._span, step_row, self._spec)

    def wait(self) -> None:
        """The run waits for the person (an approval); it goes on, in this trace, when they
        answer."""
        if not self.finished:
            self._row.status = "waiting"
            self._tracer._sender.add_run(self._row.model_copy())

    def finish(self, status: str, error: str | None = None) -> None:
        """End the run with its status ("ok", "error", "limit", "timeout", "cancelled",
        "declined");
        only the first call counts."""
        if self.finished:
            return
        self._row.status = status
        self._row.error = _clip(error)
        self._row.ended_at = _now()
        self._tracer._sender.add_run(self._row.model_copy())
        self._tracer._open.pop(self.id, None)
        if self._span is not None and self._tracer._otlp is not None:
            self._tracer._otlp.run_ended(self._span, self._row)


class Tracer:
    """Sends traces of agent runs to the hub at `hub_url` with the chat app's service token
    (the only one the hub takes traces from), and to an OpenTelemetry collector over
    OTLP/HTTP when `otlp_endpoint` is set (e.g. "http://127.0.0.1:4318"). `transport`
    replaces the network to the hub (see `TraceSender`).

        async with Tracer(hub_url, token) as tracer:
            trace = tracer.start_run(spec=spec, user="ana", conversation_id="c1")
    """

    def __init__(
        self,
        hub_url: str,
        token: str,
        *,
        flush_interval_s: float = 0.5,
        max_pending: int = 20_000,
        timeout_s: float = 10.0,
        otlp_endpoint: str | None = None,
        otlp_headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._sender = TraceSender(
            hub_url,
            token,
            flush_interval_s=flush_interval_s,
            max_pending=max_pending,
            timeout_s=timeout_s,
            transport=transport,
        )
        self._open: dict[str, RunTrace] = {}
        self._otlp = OtlpExporter(otlp_endpoint, otlp_headers) if otlp_endpoint else None

    def start_run(self, *, spec: "AgentSpec", user: str, conversation_id: str | None) -> RunTrace:
        trace = RunTrace(self, spec=spec, user=user, conversation_id=conversation_id)
        self._open[trace.id] = trace
        return trace

    async def start(self) -> None:
        """Start sending in the background, every `flush_interval_s`."""
        await self._sender.start()

    async def flush(self) -> None:
        """Send everything queued so far to the hub, now; what it could not take stays
        queued for the next flush."""
        await self._sender.flush()

    async def close(self) -> None:
        """End runs still open as errors, and send everything queued."""
        for trace in list(self._open.values()):
            trace.finish("error", _PROCESS_STOPPED)
        # Shielded: a cancellation arriving now must not drop a batch in the middle of its
        # send; the send finishes while the caller's CancelledError goes on.
        await asyncio.shield(self._sender.close())
        if self._otlp is not None:
            await asyncio.to_thread(self._otlp.shutdown)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
