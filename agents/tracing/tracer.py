"""Traces of agent runs in the hub's `trace_run` and `trace_step` tables.

Recording never waits for the database: a run and its steps are queued in memory and a
`BatchWriter` writes them off the event loop, one transaction per flush. The run row is
written when the run starts (status "running", so its steps can refer to it) and written
again, with its status and totals, when it ends; both are upserts, so the two can share a
flush. `await tracer.close()` writes everything still queued, and first ends any run still
open as an error. With `otlp_endpoint`, each run is also exported as OpenTelemetry spans.
"""

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages

from agents.tracing.otel import OtlpExporter
from agents.tracing.store import RunRow, StepRow, TraceWriter
from hub.core.db import get_engine

if TYPE_CHECKING:  # agents.runtime imports this package
    from opentelemetry.trace import Span

    from agents.spec import AgentSpec

__all__ = ["OpenStep", "RunTrace", "Tracer"]


_MAX_ERROR = 2000
_PROCESS_STOPPED = "the process stopped before the run ended"


def _now() -> datetime:
    return datetime.now(UTC)


def _clip(error: str | None) -> str | None:
    return None if error is None else error[:_MAX_ERROR]


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
    for writing when it ends, failed or not."""

    def __init__(
        self, tracer: "Tracer", *, spec: "AgentSpec", user: str, conversation_id: str | None
    ) -> None:
        self.id = str(uuid.uuid4())
        self._tracer = tracer
        self._spec = spec
        self._seq = 0
        self._row = RunRow(
            id=self.id,
            agent_slug=spec.slug,
            agent_version=spec.version,
            agent_owner=spec.owner,
            agent_owner_kind=spec.owner_kind,
            agent_owner_id=spec.owner_id,
            conversation_id=conversation_id,
            user=user,
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
        tracer._add(dataclasses.replace(self._row))
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
        step_row = StepRow(
            id=step.id,
            run_id=self.id,
            parent_id=step.parent_id,
            seq=step.seq,
            kind=step.kind,
            name=step.name[:200],
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
        self._tracer._add(step_row)
        if self._span is not None and self._tracer._otlp is not None:
            self._tracer._otlp.step_ended(self._span, step_row, self._spec)

    def wait(self) -> None:
        """The run waits for the person (an approval); it goes on, in this trace, when they
        answer."""
        if not self.finished:
            self._row.status = "waiting"
            self._tracer._add(dataclasses.replace(self._row))

    def finish(self, status: str, error: str | None = None) -> None:
        """End the run with its status ("ok", "error", "limit", "timeout", "cancelled",
        "declined");
        only the first call counts."""
        if self.finished:
            return
        self._row.status = status
        self._row.error = _clip(error)
        self._row.ended_at = _now()
        self._tracer._add(dataclasses.replace(self._row))
        self._tracer._open.pop(self.id, None)
        if self._span is not None and self._tracer._otlp is not None:
            self._tracer._otlp.run_ended(self._span, self._row)


class Tracer:
    """Writes traces of agent runs into the hub's database (its tables must exist: the hub
    migrates on start, or call `hub.core.db.migrate`), and to an OpenTelemetry collector
    over OTLP/HTTP when `otlp_endpoint` is set (e.g. "http://127.0.0.1:4318").

        async with Tracer(database_url) as tracer:
            trace = tracer.start_run(spec=spec, user="ana", conversation_id="c1")
    """

    def __init__(
        self,
        database_url: str,
        *,
        flush_interval_s: float = 0.5,
        otlp_endpoint: str | None = None,
        otlp_headers: dict[str, str] | None = None,
    ) -> None:
        self._writer = TraceWriter(get_engine(database_url), flush_interval_s)
        self._open: dict[str, RunTrace] = {}
        self._otlp = OtlpExporter(otlp_endpoint, otlp_headers) if otlp_endpoint else None

    def start_run(self, *, spec: "AgentSpec", user: str, conversation_id: str | None) -> RunTrace:
        trace = RunTrace(self, spec=spec, user=user, conversation_id=conversation_id)
        self._open[trace.id] = trace
        return trace

    def _add(self, entry: RunRow | StepRow) -> None:
        self._writer.add(entry)

    async def start(self) -> None:
        """Start writing in the background, every `flush_interval_s`."""
        await self._writer.start()

    async def flush(self) -> None:
        """Write everything queued so far, now."""
        await self._writer.flush()

    async def close(self) -> None:
        """End runs still open as errors, and write everything queued."""
        for trace in list(self._open.values()):
            trace.finish("error", _PROCESS_STOPPED)
        # Shielded: a cancellation arriving now must not drop a batch in the middle of its
        # write; the write finishes while the caller's CancelledError goes on.
        await asyncio.shield(self._writer.close())
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
