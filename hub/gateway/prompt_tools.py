"""A prompt whose model may call MCP tools: the hub runs the calls and hands back the answer.

Each round is a chat completion through the gateway (so retries, fallbacks, limits and usage
apply to each) with the tools of the version's servers; while the model asks for tools, the
hub calls them through the registry (which holds each server's secret) and sends the results
back. The caller gets the last round's completion with the usage of every round added up, and
`switchboard_tool_calls`: what was called, with what, and what came back. Asked to stream, it
gets that same answer as server-sent events once the tool rounds are done.
"""

import time
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.responses import Response

from agents.hub_client import result_text
from agents.runtime.hub_tools import ToolIndex
from hub.core.errors import Refusal
from hub.gateway.chat_request import ChatRequest
from hub.gateway.completion import read_completion
from hub.gateway.errors import GatewayError
from hub.gateway.proxy import Gateway
from hub.mcp.registry import McpRegistry
from hub.services.model_tools import UsesTools, offered_tools
from hub.services.service_accounts import ServiceIdentity

__all__ = ["MAX_TOOL_ROUNDS", "PromptTools", "answer_events"]

# Rounds in which the model may call tools; the round after them must answer.
MAX_TOOL_ROUNDS = 8
# What the model reads of one tool's result, and what the caller sees of it.
MAX_RESULT_CHARS = 20_000
SHOWN_RESULT_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class PromptTools:
    """What a prompt's tool rounds need: the gateway, the registry, and the database the
    registry's tool lists are read from."""

    gateway: Gateway
    registry: McpRegistry
    engine: Engine

    async def complete(
        self,
        *,
        service: ServiceIdentity,
        request: ChatRequest,
        definition: UsesTools,
        caller: str,
        prompt: str | None = None,
        prompt_version: int | None = None,
    ) -> Response:
        """Answer `request` with the tools of `definition`'s servers, calling them as asked.
        With none of its servers offering tools now, it is answered without tools."""

        def load() -> ToolIndex:
            with Session(self.engine) as session:
                tools, _ = offered_tools(session, definition.mcp_servers, definition.allowed_tools)
            return ToolIndex(tools)

        index = await anyio.to_thread.run_sync(load)
        if not index.functions:
            return await self.gateway.complete(
                service=service, request=request, prompt=prompt, prompt_version=prompt_version
            )
        messages = list(request.body["messages"])
        tokens_in = tokens_out = 0
        calls: list[dict[str, Any]] = []
        for round_number in range(MAX_TOOL_ROUNDS + 1):
            body = {**request.body, "messages": messages, "stream": False, "tools": index.functions}
            body.pop("stream_options", None)
            if round_number == MAX_TOOL_ROUNDS:
                body["tool_choice"] = "none"
            response = await self.gateway.complete(
                service=service,
                request=ChatRequest(
                    model=request.model, body=body, stream=False, client_wants_usage=False
                ),
                prompt=prompt,
                prompt_version=prompt_version,
            )
            completion = read_completion(response, self.gateway.catalog, request.model)
            answer = completion.body
            if not answer.get("choices"):
                raise GatewayError(502, "The model's answer had no choices.", type="upstream_error")
            tokens_in += completion.input_tokens
            tokens_out += completion.output_tokens
            message = completion.message
            asked = message.get("tool_calls") or []
            if not asked:
                break
            messages.append(
                {"role": "assistant", "content": message.get("content"), "tool_calls": asked}
            )
            for tool_call in asked:
                made = await self._call(index, tool_call, caller, prompt)
                calls.append(made)
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": str(tool_call.get("id", "")),
                        "content": made.pop("sent"),
                    }
                )
        answer["usage"] = {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        }
        answer["switchboard_tool_calls"] = calls
        headers = {
            key: value for key, value in response.headers.items() if key.startswith("x-switchboard")
        }
        if request.stream:
            return Response(
                answer_events(answer, request.client_wants_usage),
                media_type="text/event-stream",
                headers={**headers, "cache-control": "no-cache"},
            )
        return Response(orjson.dumps(answer), media_type="application/json", headers=headers)

    async def _call(
        self, index: ToolIndex, tool_call: dict[str, Any], caller: str, prompt: str | None
    ) -> dict[str, Any]:
        """Call the tool the model asked for. The model reads a refusal or a failure as the
        result, and may try again or answer without it."""
        function = tool_call.get("function") or {}
        name = str(function.get("name", ""))
        spec = index.by_name.get(name)
        made: dict[str, Any] = {"server": None, "tool": name, "arguments": {}, "is_error": True}
        if spec is None:
            text = f"There is no tool {name!r}; the tools are: {', '.join(index.by_name)}."
            return {**made, "result": text, "sent": text}
        made.update(server=spec.server, tool=spec.name)
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError as exc:
            text = f"The arguments are not valid JSON ({exc}); send a JSON object."
            return {**made, "result": text, "sent": text}
        if not isinstance(arguments, dict):
            text = "The arguments must be a JSON object."
            return {**made, "result": text, "sent": text}
        made["arguments"] = arguments
        meta = {"switchboard_user": caller, **({"switchboard_prompt": prompt} if prompt else {})}
        started = time.perf_counter()
        try:
            result = await self.registry.call_tool(
                spec.server, spec.name, arguments, caller, meta=meta
            )
        except Refusal as refusal:
            text = f"The tool {spec.name} could not be called: {refusal.message}"
        else:
            made["is_error"] = bool(result.get("isError"))
            text = result_text(result)
            if made["is_error"]:
                text = f"The tool {spec.name} failed: {text}"
        made["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return {**made, "result": text[:SHOWN_RESULT_CHARS], "sent": text[:MAX_RESULT_CHARS]}


def answer_events(answer: dict[str, Any], with_usage: bool) -> bytes:
    """A whole chat completion (its text and tool calls) as the server-sent events a stream
    of it would have been."""
    choice = answer["choices"][0]
    message = choice.get("message") or {}
    head = {key: answer.get(key) for key in ("id", "created", "model")}
    head["object"] = "chat.completion.chunk"

    def event(chunk: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps({**head, **chunk}) + b"\n\n"

    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("tool_calls"):
        delta["tool_calls"] = [
            {"index": index, **call} for index, call in enumerate(message["tool_calls"])
        ]
    events = [
        event(
            {
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                "switchboard_tool_calls": answer.get("switchboard_tool_calls", []),
            }
        ),
        event(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {},
                        "finish_reason": choice.get("finish_reason") or "stop",
                    }
                ]
            }
        ),
    ]
    if with_usage:
        events.append(event({"choices": [], "usage": answer["usage"]}))
    return b"".join(events) + b"data: [DONE]\n\n"
