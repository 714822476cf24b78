"""A scripted OpenAI-compatible upstream served over real HTTP.

Replies are deterministic and faults are injectable, so gateway and chat tests run with no
provider and no network. `script()` sets how every following request is answered;
`enqueue()` sets a one-off answer for the next request (for faults); `reply_for`, when set,
writes each reply from the request it answers.
"""

import asyncio
import dataclasses
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.servers import ThreadedServer

__all__ = ["Behaviour", "ConnectionCut", "ScriptedUpstream", "count_tokens"]


class ConnectionCut(Exception):
    """Raised inside a streamed answer: the server drops the connection mid-response."""


@dataclass
class Behaviour:
    reply: str = "Hello from the scripted upstream."
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    error_message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    # Close the stream after this many content chunks, without [DONE].
    drop_after_chunks: int | None = None
    # Break the connection after this many content chunks (0: before the stream's first byte),
    # as a provider's crashed or overloaded server does.
    cut_after_chunks: int | None = None
    # After `drop_after_chunks` content chunks, send this error event before closing the
    # stream, as OpenAI does when a stream fails on its side.
    stream_error: str | None = None
    # False: ignore stream_options.include_usage, as llama.cpp's server does.
    usage_in_stream: bool = True
    # Answer this share of requests (at random) with `status` 503 instead, as a flaky
    # provider does.
    fail_ratio: float = 0.0
    # Send a stream's events in one piece, as one body, rather than one write each (with no
    # delay between them, a busy server's socket carries them together anyway): what a
    # benchmark's upstream does, to take less of the CPU it shares with the hub it measures.
    stream_in_one_piece: bool = False


def count_tokens(text: str) -> int:
    return len(text.split())


def _prompt_tokens(body: dict[str, Any]) -> int:
    total = 0
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            total += count_tokens(content)
    return total


def _chunks(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


class ScriptedUpstream:
    def __init__(
        self,
        model_id: str = "scripted-model",
        keep_alive_s: float = 5.0,
        remember_requests: bool = True,
    ) -> None:
        self.model_id = model_id
        # A benchmark's upstream forgets them: tens of thousands of kept bodies make the
        # garbage collector's pauses grow, which would show as the upstream's latency.
        self.remember_requests = remember_requests
        self.behaviour = Behaviour()
        self.queued: list[Behaviour] = []
        # The reply to a request's body, in place of the behaviour's `reply`.
        self.reply_for: Callable[[dict[str, Any]], str] | None = None
        # The tool calls a request's answer asks for (as `Behaviour.tool_calls`), in place of
        # the behaviour's.
        self.tool_calls_for: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.hits = 0
        self.completed_streams = 0
        self.cancelled_streams = 0
        self._ids = itertools.count(1)
        # How long the server keeps an idle connection open (uvicorn's default: 5 s).
        self._server = ThreadedServer(self._build_app(), timeout_keep_alive=keep_alive_s)

    # -- scripting -------------------------------------------------------------------------
    def script(self, **changes: Any) -> None:
        self.behaviour = Behaviour(**changes)

    def enqueue(self, **changes: Any) -> None:
        self.queued.append(Behaviour(**changes))

    @property
    def url(self) -> str:
        return self._server.base_url + "/v1"

    def __enter__(self) -> Self:
        self._server.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.__exit__(exc_type, exc, tb)

    # -- the HTTP app ----------------------------------------------------------------------
    def _build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": self.model_id, "object": "model"}]})

    async def _chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.hits += 1
        if self.remember_requests:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
        behaviour = self.queued.pop(0) if self.queued else self.behaviour
        if self.reply_for is not None:
            behaviour = dataclasses.replace(behaviour, reply=self.reply_for(body))
        if self.tool_calls_for is not None:
            behaviour = dataclasses.replace(behaviour, tool_calls=self.tool_calls_for(body))
        if behaviour.delay_s:
            await asyncio.sleep(behaviour.delay_s)
        status = behaviour.status
        if behaviour.fail_ratio and random.random() < behaviour.fail_ratio:
            status = 503
        if status != 200:
            error = {"error": {"message": behaviour.error_message, "type": "scripted_error"}}
            return JSONResponse(error, status_code=status, headers=behaviour.headers)
        completion_id = f"chatcmpl-scripted-{next(self._ids)}"
        if body.get("stream"):
            events = self._stream(body, behaviour, completion_id)
            if behaviour.stream_in_one_piece:
                whole = b"".join([event async for event in events])
                return Response(whole, media_type="text/event-stream", headers=behaviour.headers)
            return StreamingResponse(
                events,
                media_type="text/event-stream",
                headers=behaviour.headers,
            )
        return Response(
            orjson.dumps(self._completion(body, behaviour, completion_id)),
            media_type="application/json",
            headers=behaviour.headers,
        )

    def _usage(self, body: dict[str, Any], behaviour: Behaviour) -> dict[str, int]:
        prompt = _prompt_tokens(body)
        completion = count_tokens(behaviour.reply) + len(behaviour.tool_calls)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _tool_calls(self, behaviour: Behaviour) -> list[dict[str, Any]]:
        return [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": orjson.dumps(call["arguments"]).decode(),
                },
            }
            for i, call in enumerate(behaviour.tool_calls)
        ]

    def _completion(self, body: dict[str, Any], behaviour: Behaviour, cid: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": behaviour.reply or None}
        finish = "stop"
        if behaviour.tool_calls:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": self._tool_calls(behaviour),
            }
            finish = "tool_calls"
        return {
            "id": cid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_id,
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": self._usage(body, behaviour),
        }

    async def _stream(self, body: dict[str, Any], behaviour: Behaviour, cid: str) -> Any:
        asked = bool((body.get("stream_options") or {}).get("include_usage"))
        include_usage = asked and behaviour.usage_in_stream
        created = int(time.time())

        def event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
            chunk: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model_id,
                "choices": choices,
            }
            if include_usage:
                chunk["usage"] = usage
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        finished = False
        try:
            if behaviour.cut_after_chunks == 0:
                raise ConnectionCut("scripted cut before the first byte")
            yield event(
                [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
            )
            if behaviour.tool_calls:
                for i, call in enumerate(self._tool_calls(behaviour)):
                    delta = {"tool_calls": [{"index": i, **call}]}
                    yield event([{"index": 0, "delta": delta, "finish_reason": None}])
                finish = "tool_calls"
            else:
                for n, piece in enumerate(_chunks(behaviour.reply)):
                    if behaviour.drop_after_chunks is not None and n >= behaviour.drop_after_chunks:
                        if behaviour.stream_error is not None:
                            error = {"message": behaviour.stream_error, "type": "server_error"}
                            yield b"data: " + orjson.dumps({"error": error}) + b"\n\n"
                        finished = True
                        return
                    if behaviour.cut_after_chunks is not None and n >= behaviour.cut_after_chunks:
                        raise ConnectionCut(f"scripted cut after {n} chunks")
                    if behaviour.chunk_delay_s:
                        await asyncio.sleep(behaviour.chunk_delay_s)
                    yield event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
                finish = "stop"
            yield event([{"index": 0, "delta": {}, "finish_reason": finish}])
            if include_usage:
                yield event([], self._usage(body, behaviour))
            yield b"data: [DONE]\n\n"
            finished = True
            self.completed_streams += 1
        finally:
            if not finished:
                self.cancelled_streams += 1
