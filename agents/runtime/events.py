"""What a run reports while it works (events) and what it hands back at the end (result).

Events reach the run's `on_event` handler in order, awaited one at a time (a slow handler
slows the run): `TextDelta`s as the model's tokens stream in (from every model call, also
the text a model writes before asking for a tool), `ToolCallStarted` and `ToolCallFinished`
around each tool call, `AnsweredBy` after a model call that the gateway's fallback model
answered, and `FinalAnswer` once, last. A stop message (step limit, time limit,
model failure) is never streamed: it comes only in `FinalAnswer.text`, with its status.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from agents.runtime.approval import ApprovalRequest

__all__ = [
    "AgentEvent",
    "AnsweredBy",
    "EventHandler",
    "FinalAnswer",
    "RunResult",
    "RunStatus",
    "TextDelta",
    "ToolCallFinished",
    "ToolCallStarted",
]

# "cancelled": the caller cancelled the run (the chat's stop button). "waiting": the run
# waits for the person to approve a query (`RunResult.approval`); "declined": they did not.
RunStatus = Literal["ok", "error", "limit", "timeout", "cancelled", "waiting", "declined"]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the model's answer, as it streams in."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    call_id: str
    server: str
    tool: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    call_id: str
    server: str
    tool: str
    # The tool's text, or what went wrong when `is_error`.
    result: str
    is_error: bool
    latency_ms: float
    # The tool's structured result, when it gives one (e.g. a query's columns and rows).
    structured: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AnsweredBy:
    """The gateway's fallback `model` answered in place of the one asked for (`asked`)."""

    model: str
    asked: str


@dataclass(frozen=True, slots=True)
class FinalAnswer:
    """The run's last word: the model's answer, or the message saying why it stopped."""

    text: str
    status: RunStatus


AgentEvent = TextDelta | ToolCallStarted | ToolCallFinished | AnsweredBy | FinalAnswer
EventHandler = Callable[[AgentEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RunResult:
    text: str
    status: RunStatus
    # None when the run was not traced.
    trace_id: str | None
    error: str | None = None
    # What the person is asked to approve when the status is "waiting".
    approval: ApprovalRequest | None = None

    @property
    def stopped_early(self) -> bool:
        """True when a limit, an error, a cancellation or a refusal ended the run (or it
        waits for the person), not the model."""
        return self.status != "ok"
