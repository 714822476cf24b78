"""One turn of the conversation: stream the model's reply, and while it asks for tools, call
them through the hub, show each call as a step, and give the results back to the model."""

import json
from contextlib import aclosing
from typing import Any

import chainlit as cl
from openai.types.chat import ChatCompletionMessageParam

from agents.runtime.hub_tools import ToolIndex
from app.hub_client import AnsweredBy, HubClient, HubError, ToolCall

__all__ = ["MAX_TOOL_ROUNDS", "run_turn"]

# A model that keeps calling tools is stopped here and asked to answer with what it has.
MAX_TOOL_ROUNDS = 8


async def _stream_once(
    hub: HubClient,
    model: str,
    messages: list[ChatCompletionMessageParam],
    tools: ToolIndex,
    reply: cl.Message,
) -> list[ToolCall]:
    calls: list[ToolCall] = []
    stream = hub.stream_chat(model=model, messages=messages, tools=tools.functions or None)
    async with aclosing(stream) as items:
        async for item in items:
            if isinstance(item, str):
                await reply.stream_token(item)
            elif isinstance(item, AnsweredBy):
                _answered_by(reply, item.model)
            else:
                calls = item
    return calls


def _answered_by(reply: cl.Message, answered: str) -> None:
    """A fallback model answered: it is the reply's author (and in its metadata), so people
    are never misled about who answered; `run_turn` adds a quiet note at the end."""
    reply.author = answered
    reply.metadata = {**(reply.metadata or {}), "answered_by": answered}


async def _note_fallback(reply: cl.Message, asked: str) -> None:
    answered = (reply.metadata or {}).get("answered_by")
    if answered and answered != asked:
        await reply.stream_token(f"\n\n*Answered by {answered}: {asked} was not available.*")


async def _run_tool(hub: HubClient, tools: ToolIndex, call: ToolCall, user: str) -> str:
    target = tools.by_name.get(call.name)
    async with cl.Step(name=call.name, type="tool", show_input="json") as step:
        step.input = call.arguments or "{}"
        if target is None:
            step.is_error = True
            step.output = f"There is no tool named {call.name!r} switched on in this chat."
            return str(step.output)
        server, tool = target.server, target.name
        step.name = f"{server} · {tool}"
        try:
            arguments: Any = json.loads(call.arguments or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("the arguments are not a JSON object")
        except ValueError as error:
            step.is_error = True
            step.output = f"The model sent arguments that are not a JSON object: {error}"
            return str(step.output)
        try:
            result = await hub.call_tool(
                server=server, tool=tool, arguments=arguments, on_behalf_of=user
            )
        except HubError as error:
            step.is_error = True
            step.output = f"The tool call failed: {error}"
            return str(step.output)
        step.is_error = result.is_error
        step.output = result.text or "(no output)"
        return str(step.output)


async def run_turn(
    *,
    hub: HubClient,
    model: str,
    history: list[ChatCompletionMessageParam],
    tools: ToolIndex,
    user: str,
    reply: cl.Message,
) -> None:
    """Stream into `reply` until the model answers without asking for tools."""
    messages = list(history)
    for _ in range(MAX_TOOL_ROUNDS):
        calls = await _stream_once(hub, model, messages, tools, reply)
        if not calls:
            await _note_fallback(reply, model)
            return
        messages.append(
            {
                "role": "assistant",
                "content": reply.content or None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments or "{}"},
                    }
                    for call in calls
                ],
            }
        )
        for call in calls:
            output = await _run_tool(hub, tools, call, user)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
    messages.append(
        {
            "role": "user",
            "content": "You have used the tools enough for this question; answer with what you "
            "found so far.",
        }
    )
    await _stream_once(hub, model, messages, ToolIndex(()), reply)
    await _note_fallback(reply, model)
