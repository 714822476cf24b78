"""The response that carries a relayed stream to the client.

Starlette's StreamingResponse watches for the client going away in an anyio task group (a
cancel scope and two more tasks per stream). This one relays in the request's own task and,
once it has to wait for the upstream, waits for the client's disconnect in one plain asyncio
task, which stops the relay (and so the upstream call) when the client goes first. A stream
that arrived whole goes out in one write with the end of the response, and needs no watcher.
"""

import asyncio
from collections.abc import AsyncGenerator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["EventStreamResponse"]


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self, pieces: AsyncGenerator[tuple[bytes, bool], None], headers: Mapping[str, str]
    ) -> None:
        """`pieces`: the bytes to send, each with whether it is the last."""
        self.pieces = pieces
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = asyncio.current_task()
        assert relay is not None
        relaying = True
        watcher: asyncio.Task[None] | None = None

        async def stop_when_the_client_goes() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if relaying:
                relay.cancel()

        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for piece, last in self.pieces:
                await send({"type": "http.response.body", "body": piece, "more_body": not last})
                if last:
                    return
                if watcher is None:
                    # From here the relay waits for the upstream.
                    watcher = asyncio.create_task(stop_when_the_client_goes())
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            # Cancelled by the watcher: the client went away, which is not an error. Any
            # other cancellation (the server shutting down) goes on up.
            if watcher is None or not watcher.done() or relay.uncancel() > 0:
                raise
        finally:
            relaying = False
            if watcher is not None:
                watcher.cancel()
            # The relay's own clean-up (closing the upstream call, accounting) runs now, also
            # when it stopped while a piece was being sent rather than inside the relay.
            await self.pieces.aclose()
