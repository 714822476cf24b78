"""The graph's nodes: call the model, run the tools it asked for, stop at the step limit.

Nodes report tool calls on the graph's custom stream (`runtime.stream_writer`) and record
their steps in the run's trace, failed and cancelled ones too.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx
import openai
from langchain_core.messages import AIMessage, InvalidToolCall, SystemMessage, ToolCall, ToolMessage
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import StreamWriter

from agents.runtime.events import ToolCallFinished, ToolCallStarted
from agents.runtime.hub_tools import ToolOutcome
from agents.runtime.limits import (
    NOT_RUN_AT_LIMIT,
    close_open_tool_calls,
    model_error_message,
    not_run,
    step_limit_message,
)
from agents.runtime.state import AgentState, RunContext

__all__ = ["ModelCallError", "call_model", "call_tools", "route_after_model", "stop_at_limit"]

_CANCELLED = "cancelled: the run stopped during this step"


class ModelCallError(Exception):
    """The model call failed (the gateway or the provider said no, or could not be reached);
    the message says so in words a person can act on."""


def _reason(exc: Exception) -> str:
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        message = body.get("message") if isinstance(body, dict) else None
        return f"the gateway answered {exc.status_code}: {message or exc.message}"
    if isinstance(exc, openai.APITimeoutError):
        return "the gateway did not answer in time"
    if isinstance(exc, openai.APIConnectionError | httpx.HTTPError):
        return f"could not reach the gateway ({exc.__cause__ or exc!r})"
    return str(exc)


async def call_model(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    request = close_open_tool_calls(state["messages"])
    if ctx.spec.instructions:
        request.insert(0, SystemMessage(ctx.spec.instructions))
    trace = ctx.trace
    step = trace.begin_step("model", ctx.spec.model) if trace is not None else None
    try:
        response = await ctx.model.ainvoke(request)
    except (openai.APIError, httpx.HTTPError) as exc:
        error = model_error_message(ctx.spec.model, _reason(exc))
        if trace is not None and step is not None:
            trace.end_model_step(step, request=request, response=None, error=error)
        raise ModelCallError(error) from exc
    except asyncio.CancelledError:
        if trace is not None and step is not None:
            trace.end_model_step(step, request=request, response=None, error=_CANCELLED)
        raise
    if trace is not None and step is not None:
        trace.end_model_step(step, request=request, response=response)
        ctx.model_step_id = step.id
    return {"messages": [response], "steps": state.get("steps", 0) + 1}


def route_after_model(
    state: AgentState, runtime: Runtime[RunContext]
) -> Literal["tools", "limit", "__end__"]:
    last = state["messages"][-1]
    if not isinstance(last, AIMessage) or not (last.tool_calls or last.invalid_tool_calls):
        return END
    if state["steps"] >= runtime.context.spec.max_steps:
        return "limit"
    return "tools"


async def stop_at_limit(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Answer the calls the model still asked for with "not run", then say why it stopped
    (the history stays one the model accepts, for the next turn)."""
    last = state["messages"][-1]
    pending = not_run(last, NOT_RUN_AT_LIMIT) if isinstance(last, AIMessage) else []
    return {"messages": [*pending, AIMessage(step_limit_message(runtime.context.spec.max_steps))]}


async def call_tools(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    last = state["messages"][-1]
    assert isinstance(last, AIMessage)
    ctx, write = runtime.context, runtime.stream_writer
    runs = [_run_tool(ctx, write, call) for call in last.tool_calls]
    runs += [_refuse_invalid(ctx, write, call) for call in last.invalid_tool_calls]
    return {"messages": list(await asyncio.gather(*runs))}


async def _run_tool(ctx: RunContext, write: StreamWriter, call: ToolCall) -> ToolMessage:
    tool = ctx.tools.by_name.get(call["name"])
    server, name = (tool.server, tool.name) if tool is not None else ("", call["name"])

    async def invoke() -> ToolOutcome:
        if tool is None:
            offered = ", ".join(ctx.tools.by_name) or "none"
            return ToolOutcome(f"There is no tool named {name!r}; the tools are: {offered}.", True)
        return await ctx.caller.call(
            server=tool.server,
            tool=tool.name,
            arguments=call["args"],
            user=ctx.user,
            context={
                "conversation": ctx.conversation_id,
                "agent": ctx.spec.slug,
                "trace": ctx.trace.id if ctx.trace is not None else "",
            },
        )

    return await _traced_call(ctx, write, call["id"], server, name, call["args"], invoke)


async def _refuse_invalid(
    ctx: RunContext, write: StreamWriter, call: InvalidToolCall
) -> ToolMessage:
    name = call["name"] or "?"
    reason = call["error"] or "unreadable"
    tool = ctx.tools.by_name.get(name)
    server, tool_name = (tool.server, tool.name) if tool is not None else ("", name)

    async def invoke() -> ToolOutcome:
        return ToolOutcome(
            f"The arguments for {name} were not a valid JSON object ({reason}). "
            "Call it again with a JSON object that matches its schema.",
            True,
        )

    arguments = {"raw_arguments": call["args"]}
    return await _traced_call(ctx, write, call["id"], server, tool_name, arguments, invoke)


async def _traced_call(
    ctx: RunContext,
    write: StreamWriter,
    call_id: str | None,
    server: str,
    tool: str,
    arguments: dict[str, Any],
    invoke: Callable[[], Awaitable[ToolOutcome]],
) -> ToolMessage:
    call_id = call_id or ""
    write(ToolCallStarted(call_id=call_id, server=server, tool=tool, arguments=arguments))
    trace = ctx.trace
    step = None
    if trace is not None:
        step = trace.begin_step("tool", f"{server}/{tool}", parent_id=ctx.model_step_id)
    started = time.perf_counter()
    try:
        outcome = await invoke()
    except asyncio.CancelledError:
        if trace is not None and step is not None:
            trace.end_tool_step(step, arguments=arguments, result=None, error=_CANCELLED)
        raise
    latency_ms = (time.perf_counter() - started) * 1000
    if trace is not None and step is not None:
        result, error = (None, outcome.text) if outcome.is_error else (outcome.text, None)
        trace.end_tool_step(step, arguments=arguments, result=result, error=error)
    write(
        ToolCallFinished(
            call_id=call_id,
            server=server,
            tool=tool,
            result=outcome.text,
            is_error=outcome.is_error,
            latency_ms=latency_ms,
        )
    )
    status: Literal["success", "error"] = "error" if outcome.is_error else "success"
    return ToolMessage(outcome.text, tool_call_id=call_id, status=status)
