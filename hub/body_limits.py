"""Every request body's size limit, enforced on the raw ASGI messages ahead of everything else
(the cross-site check, the hot routes, the middleware stack): before anything parses the body
or asks who sent it, so nobody, signed in or not, makes the hub hold more than a route takes.

A body that declares its length (`Content-Length`) over the limit is refused without reading a
byte of it. A body sent without one (chunked) is read here as it comes, counted, and refused
as soon as it passes the limit; within it, its messages are handed on as they came. The
refusal is a 413 whose message gives the limit (in OpenAI's error shape on the gateway's
`/v1/` paths), and it closes the connection, so the rest of the body is never waited for.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.responses import JSONResponse, Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.gateway.errors import openai_error_response

__all__ = ["BodyLimit", "BodyLimits"]

_CONTENT_LENGTH = b"content-length"


@dataclass(frozen=True, slots=True)
class BodyLimit:
    max_bytes: int
    # What the routes under it take, in words: "a model call".
    taking: str
    # What to do instead, said after the limit.
    advice: str = ""

    def message(self, size: str) -> str:
        said = f"The request body is {size} bytes; the limit for {self.taking} is "
        return f"{said}{self.max_bytes:,} bytes. {self.advice}".rstrip()


class BodyLimits:
    """Answers a request with `app` when its body is within its route's limit (`routes`, by
    route template, e.g. `/v1/prompts/{name}/completions`; `default` for any other path)."""

    def __init__(self, app: ASGIApp, default: BodyLimit, routes: Mapping[str, BodyLimit]) -> None:
        self._app = app
        self._default = default
        self._routes = [(compile_path(path)[0], limit) for path, limit in routes.items()]

    def limit_of(self, path: str) -> BodyLimit:
        for pattern, limit in self._routes:
            if pattern.match(path):
                return limit
        return self._default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_of(scope["path"])
        length = _declared_length(scope)
        if length is not None:
            if length > limit.max_bytes:
                await _refusal(scope, limit.message(f"{length:,}"))(scope, receive, send)
            else:
                await self._app(scope, receive, send)
            return
        received: list[Message] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":  # the client left
                break
            size += len(message.get("body", b""))
            if size > limit.max_bytes:
                refusal = _refusal(scope, limit.message(f"more than {limit.max_bytes:,}"))
                await refusal(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self._app(scope, _replayed(received, receive), send)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == _CONTENT_LENGTH:
            # The server has refused a malformed length already; digits only, to be sure.
            return int(value) if re.fullmatch(rb"\d{1,20}", value) else None
    return None


def _refusal(scope: Scope, message: str) -> Response:
    # Closing the connection spares reading (and discarding) the rest of the body.
    headers = {"connection": "close"}
    if scope["path"].startswith("/v1/"):
        return openai_error_response(413, message, headers=headers)
    return JSONResponse({"detail": message}, status_code=413, headers=headers)


def _replayed(received: list[Message], receive: Receive) -> Receive:
    """`receive` that gives the messages already `received` first."""
    pending = iter(received)

    async def replay() -> Message:
        return next(pending, None) or await receive()

    return replay
