"""The agent runtime: one LangGraph graph that runs any agent spec, calling tools through
the hub, keeping each conversation in a checkpointer and recording each run as a trace."""

from agents.runtime.events import (
    AgentEvent,
    AnsweredBy,
    EventHandler,
    FinalAnswer,
    RunResult,
    RunStatus,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from agents.runtime.graph import AgentRunner, build_graph, run_agent
from agents.runtime.hub_tools import ToolCaller, function_name

__all__ = [
    "AgentEvent",
    "AgentRunner",
    "AnsweredBy",
    "EventHandler",
    "FinalAnswer",
    "RunResult",
    "RunStatus",
    "TextDelta",
    "ToolCallFinished",
    "ToolCallStarted",
    "ToolCaller",
    "build_graph",
    "function_name",
    "run_agent",
]
