"""What tracing adds to an agent run: the same run with the tracer on and off.

Each run is one user turn of the real runtime (graph, ChatOpenAI, checkpointer): the model
asks for a tool three times, then answers, so a run has seven steps (four model calls,
three tool calls). The model is an OpenAI-compatible fake answering in process (an
`httpx.MockTransport` streaming chunks with usage) and the tool is local, so what is timed is
the runtime itself, where tracing's cost shows, not a network. Traces go to a real hub (under
uvicorn in its own process, on a SQLite file) in the tracer's batches over HTTP, flushes
included. Runs with and without the tracer alternate in slices, so a drift in the machine's
load hits both.

    .venv/bin/python -m bench.trace_overhead [--quick]

Writes bench/results/trace_overhead.json.
"""

import argparse
import asyncio
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langgraph.checkpoint.memory import InMemorySaver
from sqlalchemy import func, select

from agents.hub_client import HubClient, ToolOutcome
from agents.runtime import AgentRunner
from agents.spec import AgentSpec, ToolSpec
from agents.tracing.tracer import Tracer
from bench.gateway_overhead import TOKEN, serve_hub
from hub.core.db import dispose_engines, get_engine
from hub.models.trace import TraceStep

__all__ = ["main"]

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results" / "trace_overhead.json"
TOOL_CALLS = 3
STEPS = 2 * TOOL_CALLS + 1
RUNS, QUICK_RUNS = 600, 120
WARMUP_RUNS = 20
SLICES = 6
TARGET_ADDED_MS_PER_STEP = 0.5
REPLY = " ".join(f"word{i}" for i in range(24))

SPEC = AgentSpec(
    slug="bench-agent",
    version=1,
    owner="bench",
    name="Bench agent",
    instructions="You are a benchmark agent. Look things up, then answer.",
    model="bench-model",
    tools=(
        ToolSpec(
            server="handbook",
            name="search",
            description="Search the handbook.",
            input_schema={
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        ),
    ),
    max_steps=TOOL_CALLS + 2,
    input_usd_per_million=1.0,
    output_usd_per_million=4.0,
)


class LocalSearch:
    async def call_tool(
        self,
        *,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        user: str,
        context: Mapping[str, str] | None = None,
    ) -> ToolOutcome:
        return ToolOutcome(
            f"3 results for {arguments.get('query')!r}: travel, expenses, leave.", False
        )


def _sse(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def fake_model(request: httpx.Request) -> httpx.Response:
    """A streamed chat completion: a tool call until the turn has TOOL_CALLS tool results,
    then a 24-word answer; usage in the last chunk."""
    body = orjson.loads(request.content)
    messages = body["messages"]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    results = sum(1 for m in messages[last_user:] if m["role"] == "tool")
    base = {"id": f"c{len(messages)}", "object": "chat.completion.chunk", "created": 0}
    base["model"] = body["model"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    if results < TOOL_CALLS:
        call = {
            "index": 0,
            "id": f"call_{results}",
            "type": "function",
            "function": {"name": "handbook__search", "arguments": '{"query": "travel policy"}'},
        }
        chunks += [chunk({"tool_calls": [call]}), chunk({}, "tool_calls")]
        completion = 8
    else:
        words = REPLY.split(" ")
        chunks += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
        chunks.append(chunk({}, "stop"))
        completion = len(words)
    prompt = 20 * len(messages)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    chunks.append({**base, "choices": [], "usage": {**usage, "total_tokens": prompt + completion}})
    return httpx.Response(200, content=_sse(chunks), headers={"content-type": "text/event-stream"})


async def _runs(runner: AgentRunner, count: int, offset: int, into: list[float]) -> None:
    for i in range(count):
        started = time.perf_counter()
        result = await runner.run(
            spec=SPEC,
            user="bench",
            conversation_id=f"bench-{offset + i}",
            message="What does the travel policy say?",
        )
        into.append(time.perf_counter() - started)
        if result.status != "ok" or not result.text.startswith("word0"):
            raise RuntimeError(f"the run did not finish as scripted: {result}")


def _turn_so_far() -> list[BaseMessage]:
    """What the last model call of a run is sent: system, user, three calls and results."""
    messages: list[BaseMessage] = [SystemMessage(SPEC.instructions), HumanMessage("Travel?")]
    for i in range(TOOL_CALLS):
        call: ToolCall = {"id": f"call_{i}", "name": "handbook__search", "args": {"query": "x"}}
        messages.append(AIMessage("", tool_calls=[call]))
        messages.append(
            ToolMessage("3 results: travel, expenses, leave.", tool_call_id=f"call_{i}")
        )
    return messages


async def recorder_cost_ms(hub_url: str, steps: int) -> float:
    """The tracer's own work on the event loop per step (a model call and a tool call
    alternating), without the runtime around it."""
    request = _turn_so_far()
    usage: UsageMetadata = {"input_tokens": 180, "output_tokens": 24, "total_tokens": 204}
    response = AIMessage(REPLY, usage_metadata=usage)
    async with Tracer(hub_url, TOKEN) as tracer:
        trace = tracer.start_run(spec=SPEC, user="bench", conversation_id="recorder")
        started = time.perf_counter()
        for _ in range(steps // 2):
            model = trace.begin_step("model", SPEC.model)
            trace.end_model_step(model, request=request, response=response)
            tool = trace.begin_step("tool", "handbook/search", parent_id=model.id)
            trace.end_tool_step(tool, arguments={"query": "travel"}, result="3 results")
        elapsed = time.perf_counter() - started
        trace.finish("ok")
    return elapsed * 1000 / (2 * (steps // 2))


async def run_benchmark(runs: int, hub_url: str, database_url: str) -> dict[str, Any]:
    off_s: list[float] = []
    on_s: list[float] = []
    async with (
        HubClient(hub_url="http://model.bench", token="sb-bench") as hub,
        httpx.AsyncClient(transport=httpx.MockTransport(fake_model)) as model_http,
        Tracer(hub_url, TOKEN) as tracer,
    ):
        checkpointer = InMemorySaver()

        def runner(traced: bool) -> AgentRunner:
            return AgentRunner(
                hub=hub,
                checkpointer=checkpointer,
                tracer=tracer if traced else None,
                tool_caller=LocalSearch(),
                model_http_client=model_http,
            )

        untraced, traced = runner(False), runner(True)
        await _runs(untraced, WARMUP_RUNS, 0, [])
        await _runs(traced, WARMUP_RUNS, WARMUP_RUNS, [])
        per_slice = runs // SLICES
        offset = 2 * WARMUP_RUNS
        for _ in range(SLICES):
            for target, into in ((untraced, off_s), (traced, on_s)):
                gc.collect()
                await _runs(target, per_slice, offset, into)
                offset += per_slice
    with get_engine(database_url).connect() as connection:
        written = connection.execute(select(func.count()).select_from(TraceStep)).scalar_one()
    expected = (WARMUP_RUNS + len(on_s)) * STEPS
    if written != expected:
        raise RuntimeError(f"the tracer wrote {written} steps, expected {expected}")
    off_ms = statistics.median(off_s) * 1000 / STEPS
    on_ms = statistics.median(on_s) * 1000 / STEPS
    return {
        "steps": STEPS,
        "runs": len(on_s),
        "off_ms_per_step": round(off_ms, 4),
        "on_ms_per_step": round(on_ms, 4),
        "added_ms_per_step": round(on_ms - off_ms, 4),
        "off_mean_ms_per_step": round(statistics.fmean(off_s) * 1000 / STEPS, 4),
        "on_mean_ms_per_step": round(statistics.fmean(on_s) * 1000 / STEPS, 4),
        "trace_steps_written": written,
        "recorder_ms_per_step": round(await recorder_cost_ms(hub_url, 20 * runs), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} runs per mode")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the figures")
    args = parser.parse_args()
    runs = QUICK_RUNS if args.quick else RUNS
    print(
        f"{runs} runs per mode of {STEPS} steps ({TOOL_CALLS + 1} model calls, {TOOL_CALLS} tool "
        f"calls), in {SLICES} alternating slices; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}.",
        flush=True,
    )
    # The hub needs a model in its catalog; the runs' model calls never reach the hub.
    unused = {"provider": "openai-compatible", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    with (
        tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp,
        serve_hub(Path(tmp), [{"name": SPEC.model, "deployments": [unused]}]) as hub_url,
    ):
        try:
            figures = asyncio.run(run_benchmark(runs, hub_url, f"sqlite:///{Path(tmp) / 'hub.db'}"))
        finally:
            dispose_engines()
    print(f"\n{'tracing':>8} {'ms/step p50':>12} {'ms/step mean':>13}")
    print(
        f"{'off':>8} {figures['off_ms_per_step']:>12.3f} {figures['off_mean_ms_per_step']:>13.3f}"
    )
    print(f"{'on':>8} {figures['on_ms_per_step']:>12.3f} {figures['on_mean_ms_per_step']:>13.3f}")
    added = figures["added_ms_per_step"]
    print(f"{'added':>8} {added:>12.3f}")
    print(
        f"\nThe tracer's own work on the event loop, timed alone: "
        f"{figures['recorder_ms_per_step']:.4f} ms per step."
    )
    print(f"\n{figures['trace_steps_written']} trace steps written, none lost.")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    print(f"Wrote {args.output}.")
    met = added < TARGET_ADDED_MS_PER_STEP
    print(
        f"Target (added < {TARGET_ADDED_MS_PER_STEP:g} ms per step): {'met' if met else 'NOT met'}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
