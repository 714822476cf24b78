"""Every turn of a conversation runs in the agent runtime: an agent's live version, its
owner's draft, or a chat with a model (an agent with no instructions of its own). Each step
shows in the conversation as it happens, and the reply links to the run's trace.

One runner per app process holds the checkpointer (conversations continue after a restart)
and the tracer (every run is sent to the hub, which keeps it as a trace).
"""

import asyncio
import dataclasses
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import chainlit as cl
from chainlit.data import get_data_layer
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from openai.types.chat import ChatCompletionMessageParam

from agents.checkpoint import open_checkpointer
from agents.hub_client import HubClient
from agents.runtime import (
    AgentEvent,
    AgentRunner,
    AnsweredBy,
    RunResult,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from agents.runtime.approval import ApprovalRequest, QueryApproval, format_bytes
from agents.spec import AgentSpec
from agents.tracing.tracer import Tracer
from app.history import TRACE_LINK, reply_metadata
from app.results import ResultTable, elements_for, table_from
from app.unfinished_reply import UnfinishedReply

__all__ = [
    "PROFILE_AGENT",
    "PROFILE_DRAFT",
    "TRACE_LINK",
    "AgentHost",
    "parse_profile",
]

PROFILE_AGENT = "agent:"
PROFILE_DRAFT = "draft:"
# How long a query waits for the person's approval before it counts as declined.
APPROVAL_TIMEOUT_S = 600
SUPERSEDED = "I did not run the query: a newer message came before your answer."


def parse_profile(profile: str | None) -> tuple[str, bool] | None:
    """(agent slug, is draft) for an agent's chat profile; None for a model's."""
    for prefix, draft in ((PROFILE_AGENT, False), (PROFILE_DRAFT, True)):
        if profile and profile.startswith(prefix):
            return profile.removeprefix(prefix), draft
    return None


def _langchain_message(item: ChatCompletionMessageParam) -> BaseMessage:
    content = str(item.get("content") or "")
    return HumanMessage(content) if item["role"] == "user" else AIMessage(content)


class AgentHost:
    def __init__(self, *, hub: HubClient, database_url: str, otlp_endpoint: str = "") -> None:
        self._hub = hub
        self._database_url = database_url
        self._otlp_endpoint = otlp_endpoint or None
        self._stack = AsyncExitStack()
        self._runner: AgentRunner | None = None
        self._tracer: Tracer | None = None
        self._checkpointer: BaseCheckpointSaver[str] | None = None

    async def start(self) -> None:
        checkpointer = await self._stack.enter_async_context(open_checkpointer(self._database_url))
        self._checkpointer = checkpointer
        tracer = self._tracer = await self._stack.enter_async_context(
            Tracer(self._hub.hub_url, self._hub.token, otlp_endpoint=self._otlp_endpoint)
        )
        self._runner = AgentRunner(hub=self._hub, checkpointer=checkpointer, tracer=tracer)

    async def close(self) -> None:
        await self._stack.aclose()
        self._runner = None
        self._checkpointer = None

    async def forget(self, conversation_id: str) -> None:
        """A conversation is being deleted: its agent memory (every checkpoint of its thread)
        goes now, and the hub is told, which keeps its traces for the audit period only."""
        if self._checkpointer is None:
            await self.start()
        assert self._checkpointer is not None
        await self._checkpointer.adelete_thread(conversation_id)
        await self._hub.forget_conversation(conversation_id)

    async def run(
        self,
        *,
        spec: AgentSpec,
        user: str,
        conversation_id: str,
        message: str | list[str | dict[str, Any]],
        approval: QueryApproval | None = None,
        earlier: Sequence[ChatCompletionMessageParam] = (),
        cut_off: str | None = None,
    ) -> RunResult:
        """Run one turn, showing it in the current Chainlit conversation. A query over the
        person's threshold waits for their answer in the chat. `earlier` is the conversation
        so far, for an agent that has not seen it (a conversation copied from a share);
        `cut_off` the previous turn's reply as far as it came when its chat process stopped."""
        if self._runner is None:
            await self.start()
        runner = self._runner
        assert runner is not None
        view = _TurnView(spec)
        try:
            result = await runner.run(
                spec=spec,
                user=user,
                conversation_id=conversation_id,
                message=message,
                on_event=view.show,
                approval=approval,
                earlier=[_langchain_message(item) for item in earlier],
                cut_off=cut_off,
            )
            while result.status == "waiting" and result.approval is not None:
                approved = await _ask_approval(result.approval, spec)
                if not await runner.waiting(conversation_id):
                    # A newer message went on with the conversation while this one asked.
                    result = dataclasses.replace(result, text=SUPERSEDED, status="declined")
                    break
                result = await runner.resume(
                    spec=spec,
                    user=user,
                    conversation_id=conversation_id,
                    approved=approved,
                    on_event=view.show,
                    approval=approval,
                )
        except asyncio.CancelledError:
            # The stop button: keep what streamed in so far.
            if view.reply.content:
                await view.reply.send()
            raise
        if self._tracer is not None:
            # The reply links to the trace: send it all to the hub before the link shows.
            await self._tracer.flush()
        await view.finish(result, hub_url=self._hub.hub_url)
        return result


async def _ask_approval(request: ApprovalRequest, spec: AgentSpec) -> bool:
    """Show what the queries would scan and cost, and wait for the person's yes or no."""
    queries = "\n\n".join(
        f"```sql\n{query.sql}\n```\n{format_bytes(query.bytes_processed)}, "
        f"about ${query.cost_usd:,.2f}"
        for query in request.queries
    )
    question = f"**Approve before it runs?** {request.summary()}\n\n{queries}"
    ask = cl.AskActionMessage(
        content=question,
        actions=[
            cl.Action(name="approve", payload={"approved": True}, label="Run it"),
            cl.Action(name="decline", payload={"approved": False}, label="Don't run it"),
        ],
        author=spec.name,
        timeout=APPROVAL_TIMEOUT_S,
    )
    answer = await ask.send()
    approved = answer is not None and bool(answer.get("payload", {}).get("approved"))
    if answer is None:
        outcome = f"No answer within {APPROVAL_TIMEOUT_S // 60} minutes: not run."
    else:
        outcome = "You approved it." if approved else "You declined it."
    # Chainlit replaces the question with the choice; keep the question, add the choice.
    ask.content = f"{question}\n\n**{outcome}**"
    await ask.update()
    return approved


class _TurnView:
    """The reply and the tool steps of one turn, as the events arrive."""

    def __init__(self, spec: AgentSpec) -> None:
        metadata = reply_metadata(spec.model)
        if not spec.is_model_chat:
            metadata |= {"agent": spec.slug, "version": spec.version}
        self.reply = cl.Message(content="", author=spec.name, metadata=metadata)
        self.unfinished = UnfinishedReply(self.reply, get_data_layer())
        self.steps: dict[str, cl.Step] = {}
        # The last table a tool returned in this turn: shown with the answer.
        self.table: ResultTable | None = None
        # The gateway's fallback model answered in place of this one.
        self.unavailable: str | None = None

    async def show(self, event: AgentEvent) -> None:
        if isinstance(event, TextDelta):
            await self.reply.stream_token(event.text)
            await self.unfinished.streamed()
        elif isinstance(event, AnsweredBy):
            # The reply's author is who answered, so nobody is misled; a note says why.
            self.reply.author = event.model
            self.reply.metadata = {**(self.reply.metadata or {}), "answered_by": event.model}
            self.unavailable = event.asked
        elif isinstance(event, ToolCallStarted):
            step = cl.Step(name=f"{event.server} · {event.tool}", type="tool", show_input="json")
            step.input = event.arguments
            self.steps[event.call_id] = step
            await step.send()
        elif isinstance(event, ToolCallFinished):
            if (finished := self.steps.pop(event.call_id, None)) is not None:
                finished.output = event.result or "(no output)"
                finished.is_error = event.is_error
                await finished.update()
            table = None if event.is_error else table_from(event.structured)
            if table is not None:
                self.table = table

    async def finish(self, result: RunResult, *, hub_url: str) -> None:
        if not self.reply.content.strip() and result.text:
            self.reply.content = result.text
        elif result.stopped_early and result.text and result.text not in self.reply.content:
            self.reply.content += f"\n\n{result.text}"
        if self.table is not None and result.status == "ok":
            # Chainlit types the field with a TypeVar bound to Element, which no list fits.
            self.reply.elements = elements_for(self.table)  # type: ignore[assignment]
            if self.table.truncated:
                self.reply.content += (
                    f"\n\n_The table shows the first {len(self.table.rows)} rows only._"
                )
        answered = (self.reply.metadata or {}).get("answered_by")
        if answered and self.unavailable:
            self.reply.content += (
                f"\n\n*Answered by {answered}: {self.unavailable} was not available.*"
            )
        if result.trace_id:
            self.reply.content += f"\n\n[{TRACE_LINK}]({hub_url}/traces/{result.trace_id})"
            self.reply.metadata = {**(self.reply.metadata or {}), "trace": result.trace_id}
        await self.reply.send()
