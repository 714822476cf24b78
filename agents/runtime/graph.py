"""One graph for every agent: model → tools → model … until the model answers, the step
limit stops it, or the time limit does. The agent itself (its model, instructions, tools and
limits) comes with each run, in the run's context.

    async with (
        HubClient(hub_url=hub_url, token=token) as hub,
        open_checkpointer(database_url) as checkpointer,
        Tracer(hub.hub_url, hub.token) as tracer,
    ):
        result = await run_agent(spec=spec, hub=hub, user="ana", conversation_id="c1",
                                 message="Weather in Lisbon?", checkpointer=checkpointer,
                                 tracer=tracer, on_event=show)
"""

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StreamMode
from pydantic import SecretStr

from agents.hub_client import HubClient
from agents.runtime.approval import ApprovalRequest, QueryApproval
from agents.runtime.events import EventHandler, FinalAnswer, RunResult, RunStatus, TextDelta
from agents.runtime.hub_tools import ToolCaller, ToolIndex
from agents.runtime.limits import needs_tools_message, time_limit_message
from agents.runtime.nodes import (
    ModelCallError,
    approve,
    call_model,
    call_tools,
    check_approval,
    route_after_check,
    route_after_model,
    stop_at_limit,
)
from agents.runtime.state import AgentState, RunContext
from agents.spec import AgentSpec
from agents.tracing.tracer import RunTrace, Tracer

__all__ = ["AgentRunner", "build_graph", "run_agent"]

AgentGraph = CompiledStateGraph[AgentState, RunContext, Any, Any]


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None) -> AgentGraph:
    builder = StateGraph(AgentState, context_schema=RunContext)
    builder.add_node("model", call_model)
    builder.add_node("tools", call_tools)
    builder.add_node("limit", stop_at_limit)
    builder.add_node("check", check_approval)
    builder.add_node("approve", approve, destinations=("tools", END))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", route_after_model)
    builder.add_conditional_edges("check", route_after_check)
    builder.add_edge("tools", "model")
    builder.add_edge("limit", END)
    return builder.compile(checkpointer=checkpointer, name="switchboard-agent")


class AgentRunner:
    """Runs agents through one hub client (model calls to its gateway, tool calls to its MCP
    registry) with one checkpointer and (optionally) one tracer. The caller owns the client.

    `tool_caller` replaces the hub for tool calls and `model_http_client` carries the model
    calls: both are seams for benchmarks and tests, not needed in production.
    """

    def __init__(
        self,
        *,
        hub: HubClient,
        checkpointer: BaseCheckpointSaver[Any] | None,
        tracer: Tracer | None = None,
        tool_caller: ToolCaller | None = None,
        model_http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._hub = hub
        self._tracer = tracer
        self._graph = build_graph(checkpointer)
        # The OpenAI SDK sets its own URLs and time-outs on each request of the hub's client.
        self._model_http = model_http_client or hub.http
        self._tools = tool_caller or hub
        self._models: dict[tuple[str, int | None, str], ChatOpenAI] = {}
        # Traces of runs that wait for an approval, by conversation.
        self._waiting: dict[str, RunTrace] = {}

    def _model(self, spec: AgentSpec, tools: ToolIndex) -> Any:
        key = (spec.model, spec.max_tokens, spec.slug)
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = ChatOpenAI(
                model=spec.model,
                base_url=f"{self._hub.hub_url.rstrip('/')}/v1",
                api_key=SecretStr(self._hub.token),
                # mypy knows the field by its alias (max_completion_tokens) only.
                max_tokens=spec.max_tokens,  # type: ignore[call-arg]
                streaming=True,
                stream_usage=True,
                max_retries=0,
                # Usage is counted per agent; a chat with a model is no agent's.
                default_headers={"X-Switchboard-Agent": spec.slug} if spec.slug else None,
                http_async_client=self._model_http,
            )
        return model.bind_tools(tools.functions) if tools.functions else model

    async def run(
        self,
        *,
        spec: AgentSpec,
        user: str,
        conversation_id: str,
        message: str | list[str | dict[str, Any]],
        on_event: EventHandler | None = None,
        approval: QueryApproval | None = None,
        earlier: Sequence[BaseMessage] = (),
        cut_off: str | None = None,
    ) -> RunResult:
        """One turn of a conversation: `message` from `user`, with the conversation's earlier
        turns from the checkpointer (its thread is `conversation_id`), or from `earlier` when
        the checkpointer has none (a conversation copied from a shared one). `cut_off` is the
        previous turn's answer as far as the person saw it, when the process running that turn
        stopped mid-answer: the checkpointer never got it, so it goes in before `message`.
        Never raises for a model, tool or limit failure: the result (and the trace) say what
        happened. With `approval`, a query over the threshold ends the call with status
        "waiting": answer with `resume`. `message` is text, or OpenAI content parts (text and
        images) for a model that takes images."""
        stale = self._waiting.pop(conversation_id, None)
        if stale is not None:
            stale.finish("declined", "a new message came before the answer to the approval")
        messages: list[BaseMessage] = [HumanMessage(message)]
        if earlier or cut_off:
            state = await self._graph.aget_state({"configurable": {"thread_id": conversation_id}})
            kept: list[BaseMessage] = state.values.get("messages") or []
            if earlier and not kept:
                messages = [*earlier, *messages]
            elif cut_off and kept and not _is_answer(kept[-1]):
                messages = [AIMessage(cut_off), *messages]
        inputs: dict[str, Any] = {"messages": messages, "steps": 0}
        trace = self._start_trace(spec, user, conversation_id)
        if spec.tools and not spec.model_calls_tools:
            # Without tool calling such a model answers from its instructions alone, as if it
            # had looked: say what is missing instead of calling it.
            text = needs_tools_message(spec.model)
            _finish(trace, "error", text)
            if on_event is not None:
                await on_event(FinalAnswer(text=text, status="error"))
            return RunResult(
                text=text, status="error", trace_id=trace.id if trace else None, error=text
            )
        return await self._execute(inputs, spec, user, conversation_id, on_event, approval, trace)

    async def resume(
        self,
        *,
        spec: AgentSpec,
        user: str,
        conversation_id: str,
        approved: bool,
        on_event: EventHandler | None = None,
        approval: QueryApproval | None = None,
    ) -> RunResult:
        """Go on with a run that waits for approval: run the queries, or end saying why not.
        The run continues in the trace it started in."""
        trace = self._waiting.pop(conversation_id, None)
        if trace is None:
            trace = self._start_trace(spec, user, conversation_id)
        command: Command[str] = Command(resume={"approved": approved})
        return await self._execute(command, spec, user, conversation_id, on_event, approval, trace)

    async def waiting(self, conversation_id: str) -> bool:
        """True while the conversation's run waits for an approval (also after a restart:
        the wait is in the checkpoint); False once answered or passed by a new message."""
        config: RunnableConfig = {"configurable": {"thread_id": conversation_id}}
        state = await self._graph.aget_state(config)
        return bool(state.interrupts)

    async def _execute(
        self,
        inputs: dict[str, Any] | Command[Any],
        spec: AgentSpec,
        user: str,
        conversation_id: str,
        on_event: EventHandler | None,
        approval: QueryApproval | None,
        trace: RunTrace | None,
    ) -> RunResult:
        tools = ToolIndex(spec.tools)
        context = RunContext(
            spec=spec,
            model=self._model(spec, tools),
            tools=tools,
            caller=self._tools,
            user=user,
            conversation_id=conversation_id,
            approval=approval,
            trace=trace,
        )
        config: RunnableConfig = {
            "configurable": {"thread_id": conversation_id},
            "recursion_limit": 2 * spec.max_steps + 5,
        }
        error: str | None = None
        asked: ApprovalRequest | None = None
        try:
            async with asyncio.timeout(spec.timeout_s) as deadline:
                try:
                    text, status, asked = await self._stream(inputs, config, context, on_event)
                except ModelCallError as exc:
                    text, status, error = str(exc), "error", str(exc)
        except TimeoutError:
            if not deadline.expired():
                _finish(trace, "error", "TimeoutError")
                raise
            text, status = time_limit_message(spec.timeout_s), "timeout"
            error = text
        except asyncio.CancelledError:
            _finish(trace, "cancelled", "the run was cancelled")
            raise
        except Exception as exc:  # recorded, then raised: a bug, not a model or tool failure
            _finish(trace, "error", f"{type(exc).__name__}: {exc}")
            raise
        if asked is not None:
            status, text = "waiting", asked.summary()
            if trace is not None:
                trace.wait()
                self._waiting[conversation_id] = trace
        else:
            _finish(trace, status, error)
        if on_event is not None and asked is None:
            await on_event(FinalAnswer(text=text, status=status))
        return RunResult(
            text=text,
            status=status,
            trace_id=trace.id if trace else None,
            error=error,
            approval=asked,
        )

    def _start_trace(self, spec: AgentSpec, user: str, conversation_id: str) -> RunTrace | None:
        if self._tracer is None:
            return None
        return self._tracer.start_run(spec=spec, user=user, conversation_id=conversation_id)

    async def _stream(
        self,
        inputs: dict[str, Any] | Command[Any],
        config: RunnableConfig,
        context: RunContext,
        on_event: EventHandler | None,
    ) -> tuple[str, RunStatus, ApprovalRequest | None]:
        modes: list[StreamMode] = ["updates"]
        if on_event is not None:
            modes += ["messages", "custom"]
        text = ""
        status: RunStatus = "ok"
        asked: ApprovalRequest | None = None
        # What each mode streams differs (the graph's stream is typed for one mode at a time).
        data: Any
        async for mode, data in self._graph.astream(
            inputs, config, context=context, stream_mode=modes
        ):
            if mode == "updates":
                for node, update in data.items():
                    if node == "__interrupt__":
                        asked = ApprovalRequest.from_state(update[0].value)
                    elif (
                        node in ("model", "limit", "approve") and update and update.get("messages")
                    ):
                        last = update["messages"][-1]
                        if isinstance(last, AIMessage):
                            text = last.text
                        status = _ENDING_STATUS.get(node, "ok")
            elif on_event is None:
                continue
            elif mode == "messages":
                chunk, metadata = data
                if (
                    isinstance(chunk, AIMessageChunk)
                    and metadata.get("langgraph_node") == "model"
                    and (delta := chunk.text)
                ):
                    await on_event(TextDelta(delta))
            else:
                await on_event(data)
        return text, status, asked


# The status a run ends with when this node wrote its last message.
_ENDING_STATUS: dict[str, RunStatus] = {"limit": "limit", "approve": "declined"}


def _is_answer(message: BaseMessage) -> bool:
    return isinstance(message, AIMessage) and not (message.tool_calls or message.invalid_tool_calls)


def _finish(trace: RunTrace | None, status: str, error: str | None) -> None:
    if trace is not None:
        trace.finish(status, error)


async def run_agent(
    *,
    spec: AgentSpec,
    hub: HubClient,
    user: str,
    conversation_id: str,
    message: str,
    checkpointer: BaseCheckpointSaver[Any] | None,
    tracer: Tracer | None,
    on_event: EventHandler | None = None,
) -> RunResult:
    """One turn with a runner of its own (a process that runs many holds one `AgentRunner`)."""
    runner = AgentRunner(hub=hub, checkpointer=checkpointer, tracer=tracer)
    return await runner.run(
        spec=spec, user=user, conversation_id=conversation_id, message=message, on_event=on_event
    )
