"""How an agent's loop, run by an evaluation run inside the hub, reaches the model, its tools
and the trace store. The agent runtime speaks HTTP to the hub's gateway and API (as the chat
app does); here the hub answers it in its own process, as the service `evaluation`:

- `GatewayTransport`: its model calls, through the gateway (retries, fallbacks, limits and
  usage as for any call, the usage under the agent), with the tokens and cost they spent;
- `RegistryTools`: its tool calls, through the MCP registry (which holds each server's
  secret), with the tools it called;
- `TraceWriter`: its trace batches, written to the database as `POST /api/traces/batch`
  writes the chat app's.
"""

from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import orjson
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from agents.hub_client import ToolOutcome, result_text
from agents.tracing.records import TraceBatch
from hub.core.errors import InvalidError, Refusal
from hub.gateway.chat_request import ChatRequest, parse_chat_request
from hub.gateway.completion import read_completion
from hub.gateway.errors import GatewayError
from hub.gateway.prompt_tools import answer_events
from hub.gateway.proxy import Gateway
from hub.mcp.registry import McpRegistry
from hub.services.service_accounts import ServiceIdentity
from hub.services.traces import record_batch

__all__ = ["GatewayTransport", "RegistryTools", "TraceWriter"]


def _response(failed: GatewayError) -> httpx.Response:
    answer = failed.response()
    return httpx.Response(
        failed.status, headers=dict(answer.headers.items()), content=bytes(answer.body)
    )


class GatewayTransport(httpx.AsyncBaseTransport):
    """Answers the runtime's chat completions with the gateway, as `service` for `agent`.
    The gateway is asked for the whole answer; a client that asked to stream gets it as the
    events of one stream. What every answer spent adds up in `input_tokens`,
    `output_tokens` and `cost_usd` (at the prices of the model that answered)."""

    def __init__(self, *, gateway: Gateway, service: ServiceIdentity, agent: str) -> None:
        self._gateway = gateway
        self._service = service
        self._agent = agent
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_usd = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
            return _response(GatewayError(404, f"No {request.method} {request.url.path} here."))
        try:
            asked = parse_chat_request(await request.aread())
            body = {**asked.body, "stream": False}
            body.pop("stream_options", None)
            whole = ChatRequest(
                model=asked.model, body=body, stream=False, client_wants_usage=False
            )
            answer = await self._gateway.complete(
                service=self._service, request=whole, agent=self._agent
            )
            completion = read_completion(answer, self._gateway.catalog, asked.model)
        except GatewayError as failed:
            return _response(failed)
        self.input_tokens += completion.input_tokens
        self.output_tokens += completion.output_tokens
        self.cost_usd += completion.cost_usd
        if not asked.stream:
            return httpx.Response(200, json=completion.body)
        document = {
            **completion.body,
            "usage": {
                "prompt_tokens": completion.input_tokens,
                "completion_tokens": completion.output_tokens,
                "total_tokens": completion.input_tokens + completion.output_tokens,
            },
        }
        if not document.get("choices"):
            return _response(
                GatewayError(502, "The model's answer had no choices.", type="upstream_error")
            )
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=answer_events(document, asked.client_wants_usage),
        )


class RegistryTools:
    """Calls the runtime's tools through the registry as `caller`; `called` lists each tool
    called, as `server.tool`, in the order called."""

    def __init__(self, *, registry: McpRegistry, caller: str) -> None:
        self._registry = registry
        self._caller = caller
        self.called: list[str] = []

    async def call_tool(
        self,
        *,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        user: str,
        context: Mapping[str, str] | None = None,
    ) -> ToolOutcome:
        self.called.append(f"{server}.{tool}")
        meta = {f"switchboard_{key}": value for key, value in (context or {}).items() if value}
        meta["switchboard_user"] = user
        try:
            result = await self._registry.call_tool(
                server, tool, arguments, self._caller, meta=meta
            )
        except Refusal as refusal:
            return ToolOutcome(f"The tool {tool} could not be called: {refusal.message}", True)
        text = result_text(result)
        if result.get("isError"):
            return ToolOutcome(f"The tool {tool} failed: {text}", True)
        structured = result.get("structuredContent")
        return ToolOutcome(text, False, structured if isinstance(structured, dict) else None)


class TraceWriter(httpx.AsyncBaseTransport):
    """Writes the tracer's batches to the hub's database (in a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _write(self, batch: TraceBatch) -> None:
        with Session(self._engine) as session:
            record_batch(session=session, batch=batch)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            batch = TraceBatch.model_validate_json(await request.aread())
            await anyio.to_thread.run_sync(self._write, batch)
        except (ValidationError, InvalidError) as refused:
            return httpx.Response(422, content=orjson.dumps({"detail": str(refused)}))
        except SQLAlchemyError as failed:
            # Kept by the tracer and sent again at its next flush.
            return httpx.Response(503, text=f"The traces were not written: {failed}")
        return httpx.Response(204)
