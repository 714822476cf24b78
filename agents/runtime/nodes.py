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
import orjson
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langgraph.runtime import Runtime
from langgraph.types import Command, StreamWriter, interrupt

from agents.hub_client import ToolOutcome
from agents.runtime.approval import (
    ApprovalRequest,
    PendingQuery,
    QueryApproval,
    declined_message,
)
from agents.runtime.events import AnsweredBy, ToolCallFinished, ToolCallStarted
from agents.runtime.limits import (
    NOT_RUN_AT_LIMIT,
    NOT_RUN_DECLINED,
    close_open_tool_calls,
    model_error_message,
    not_run,
    step_limit_message,
)
from agents.runtime.state import AgentState, RunContext

__all__ = [
    "ModelCallError",
    "approve",
    "call_model",
    "call_tools",
    "check_approval",
    "route_after_check",
    "route_after_model",
    "stop_at_limit",
]

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
    # The gateway names the model that answered in the response's `model` field.
    answered = response.response_metadata.get("model_name")
    if answered and answered != ctx.spec.model:
        runtime.stream_writer(AnsweredBy(model=str(answered), asked=ctx.spec.model))
    return {"messages": [response], "steps": state.get("steps", 0) + 1}


def route_after_model(
    state: AgentState, runtime: Runtime[RunContext]
) -> Literal["check", "limit", "__end__"]:
    last = state["messages"][-1]
    if not isinstance(last, AIMessage) or not (last.tool_calls or last.invalid_tool_calls):
        return "__end__"
    if state["steps"] >= runtime.context.spec.max_steps:
        return "limit"
    return "check"


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
        return await ctx.caller.call_tool(
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

    outcome = await _traced_call(ctx, write, call["id"] or "", server, name, call["args"], invoke)
    return _as_message(call["id"], outcome)


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
    outcome = await _traced_call(ctx, write, call["id"] or "", server, tool_name, arguments, invoke)
    return _as_message(call["id"], outcome)


async def _traced_call(
    ctx: RunContext,
    write: StreamWriter,
    call_id: str,
    server: str,
    tool: str,
    arguments: dict[str, Any],
    invoke: Callable[[], Awaitable[ToolOutcome]],
) -> ToolOutcome:
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
            structured=outcome.structured,
        )
    )
    return outcome


def _as_message(call_id: str | None, outcome: ToolOutcome) -> ToolMessage:
    status: Literal["success", "error"] = "error" if outcome.is_error else "success"
    return ToolMessage(outcome.text, tool_call_id=call_id or "", status=status)


def route_after_check(
    state: AgentState, runtime: Runtime[RunContext]
) -> Literal["approve", "tools"]:
    return "approve" if state.get("approval") else "tools"


async def check_approval(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Price each query the model wants to run; ask (in `approve`) when one is over the
    person's threshold. A query whose dry run fails needs no approval: running it fails the
    same way, and the model reads why."""
    ctx, write = runtime.context, runtime.stream_writer
    policy = ctx.approval
    last = state["messages"][-1]
    if policy is None or not isinstance(last, AIMessage):
        return {"approval": None}
    pending: list[PendingQuery] = []
    for call in last.tool_calls:
        tool = ctx.tools.by_name.get(call["name"])
        sql = call["args"].get("sql")
        if tool is None or tool.name != policy.run_tool or not isinstance(sql, str):
            continue
        if not ctx.tools.offers(tool.server, policy.estimate_tool):
            continue
        estimate = _known_estimate(state["messages"], ctx, tool.server, policy, sql)
        if estimate is None:
            estimate = await _estimate(ctx, write, call["id"] or "", tool.server, policy, sql)
        if estimate is not None and estimate[0] > policy.threshold_bytes:
            pending.append(
                PendingQuery(
                    call_id=call["id"] or "",
                    server=tool.server,
                    tool=tool.name,
                    sql=sql,
                    bytes_processed=estimate[0],
                    cost_usd=estimate[1],
                )
            )
    if not pending:
        return {"approval": None}
    request = ApprovalRequest(queries=tuple(pending), threshold_bytes=policy.threshold_bytes)
    if ctx.trace is not None:
        step = ctx.trace.begin_step("approval", "approval asked", parent_id=ctx.model_step_id)
        ctx.trace.end_tool_step(
            step, arguments=request.to_state(), result=f"asked {ctx.user}: {request.summary()}"
        )
    return {"approval": request.to_state()}


def _dry_run_figures(dry_run: Any) -> tuple[int, float] | None:
    try:
        return int(dry_run["bytes_processed"]), float(dry_run.get("cost_usd") or 0.0)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _known_estimate(
    messages: list[AnyMessage], ctx: RunContext, server: str, policy: QueryApproval, sql: str
) -> tuple[int, float] | None:
    """(bytes, dollars) from a dry run of exactly this SQL the model already made in this
    conversation, so the query is not priced twice."""
    dry_run_ids: set[str] = set()
    for message in messages:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                tool = ctx.tools.by_name.get(call["name"])
                if (
                    tool is not None
                    and (tool.server, tool.name) == (server, policy.estimate_tool)
                    and call["args"].get("sql") == sql
                    and call["id"]
                ):
                    dry_run_ids.add(call["id"])
    for message in reversed(messages):
        if (
            isinstance(message, ToolMessage)
            and message.tool_call_id in dry_run_ids
            and message.status == "success"
            and isinstance(message.content, str)
        ):
            try:
                return _dry_run_figures(orjson.loads(message.content))
            except orjson.JSONDecodeError:
                return None
    return None


async def _estimate(
    ctx: RunContext,
    write: StreamWriter,
    call_id: str,
    server: str,
    policy: QueryApproval,
    sql: str,
) -> tuple[int, float] | None:
    """(bytes, dollars) from the server's dry run, or None when it could not tell."""

    async def invoke() -> ToolOutcome:
        return await ctx.caller.call_tool(
            server=server,
            tool=policy.estimate_tool,
            arguments={"sql": sql},
            user=ctx.user,
            context={
                "conversation": ctx.conversation_id,
                "agent": ctx.spec.slug,
                "trace": ctx.trace.id if ctx.trace is not None else "",
            },
        )

    arguments = {"sql": sql}
    outcome = await _traced_call(
        ctx, write, f"{call_id}-cost", server, policy.estimate_tool, arguments, invoke
    )
    if outcome.is_error or outcome.structured is None:
        return None
    return _dry_run_figures(outcome.structured)


async def approve(
    state: AgentState, runtime: Runtime[RunContext]
) -> Command[Literal["tools", "__end__"]]:
    """Wait for the person's answer; run the tools when approved, end the run when not."""
    ctx = runtime.context
    asked = state.get("approval") or {}
    request = ApprovalRequest.from_state(asked)
    answer = interrupt(asked)
    approved = bool(answer.get("approved")) if isinstance(answer, dict) else answer is True
    if ctx.trace is not None:
        step = ctx.trace.begin_step("approval", "approval answered", parent_id=ctx.model_step_id)
        decision = "approved" if approved else "declined"
        ctx.trace.end_tool_step(step, arguments=asked, result=f"{decision} by {ctx.user}")
    if approved:
        return Command(goto="tools", update={"approval": None})
    last = state["messages"][-1]
    pending = not_run(last, NOT_RUN_DECLINED) if isinstance(last, AIMessage) else []
    return Command(
        goto="__end__",
        update={
            "approval": None,
            "messages": [*pending, AIMessage(declined_message(request))],
        },
    )
