"""The graph's state (what the checkpointer keeps per conversation) and a run's context
(what one run needs and nothing stores)."""

from dataclasses import dataclass
from typing import Annotated, Any, NotRequired

from langchain_core.messages import AnyMessage
from langchain_core.runnables import Runnable
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from agents.runtime.approval import QueryApproval
from agents.runtime.hub_tools import ToolCaller, ToolIndex
from agents.spec import AgentSpec
from agents.tracing.tracer import RunTrace

__all__ = ["AgentState", "RunContext"]


class AgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    # Model calls in the current run (the current user turn); each run starts it at 0.
    steps: int
    # The queries waiting for the person's approval (`ApprovalRequest.to_state()`), if any.
    approval: NotRequired[dict[str, Any] | None]


@dataclass(slots=True)
class RunContext:
    spec: AgentSpec
    # The chat model with the agent's tools bound.
    model: Runnable[Any, Any]
    tools: ToolIndex
    caller: ToolCaller
    user: str
    trace: RunTrace | None = None
    # The conversation (checkpointer thread) the run belongs to; sent with tool calls.
    conversation_id: str = ""
    # The trace step of the model call whose tool calls are being run (their parent).
    model_step_id: str | None = None
    # Ask the person before queries over their threshold; None: never ask.
    approval: QueryApproval | None = None
