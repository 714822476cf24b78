"""How a run ends when it is stopped rather than finished, and keeping the conversation
valid for the model after such a stop."""

from collections.abc import Sequence

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage

__all__ = [
    "NOT_RUN_AT_LIMIT",
    "NOT_RUN_DECLINED",
    "close_open_tool_calls",
    "model_error_message",
    "needs_tools_message",
    "not_run",
    "step_limit_message",
    "time_limit_message",
]

NOT_RUN_AT_LIMIT = "Not run: the agent reached its step limit first."
NOT_RUN_DECLINED = "Not run: the person declined it when asked to approve its cost."
NOT_RUN_INTERRUPTED = "Not run: the run stopped before this call finished."


def step_limit_message(max_steps: int) -> str:
    return (
        f"I stopped at my step limit of {max_steps} model calls before finishing. "
        "Ask me to continue, or raise the agent's step limit."
    )


def time_limit_message(timeout_s: float) -> str:
    return (
        f"I stopped at my time limit of {timeout_s:g} seconds before finishing. "
        "Ask me to continue, or raise the agent's time limit."
    )


def needs_tools_message(model: str) -> str:
    return (
        f"I need a model that can call tools, and {model} cannot: an admin adds such a model "
        "to the hub's model catalog (models.yaml), and the agent's owner picks it."
    )


def model_error_message(model: str, reason: str) -> str:
    return f"The model {model} failed, so I could not finish: {reason}"


def not_run(message: AIMessage, text: str) -> list[ToolMessage]:
    """A ToolMessage for every call `message` asked for, saying it was not run."""
    calls = (*message.tool_calls, *message.invalid_tool_calls)
    return [ToolMessage(text, tool_call_id=c["id"], status="error") for c in calls if c["id"]]


def close_open_tool_calls(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """The history with a "not run" answer after every tool call that never got one (a run
    that timed out or was cancelled mid-call), since models refuse such a history."""
    repaired: list[AnyMessage] = []
    open_ids: list[str] = []
    for message in messages:
        if isinstance(message, ToolMessage):
            if message.tool_call_id in open_ids:
                open_ids.remove(message.tool_call_id)
        elif open_ids:
            repaired += [
                ToolMessage(NOT_RUN_INTERRUPTED, tool_call_id=i, status="error") for i in open_ids
            ]
            open_ids = []
        repaired.append(message)
        if isinstance(message, AIMessage):
            calls = (*message.tool_calls, *message.invalid_tool_calls)
            open_ids = [call["id"] for call in calls if call["id"]]
    return repaired
