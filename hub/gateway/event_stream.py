"""The response that carries a relayed stream to the client.

Starlette's StreamingResponse watches for the client going away in an anyio task group (a
cancel scope and two more tasks per stream). This one relays in the request's own task and
waits for the client's disconnect in one plain asyncio task, which stops the relay (and so the
upstream call) when the client goes first.
"""

import asyncio
from collections.abc import AsyncGenerator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["EventStreamResponse"]


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[bytes, None], headers: Mapping[str, str]) -> None:
        self.events = events
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = asyncio.current_task()
        assert relay is not None
        relaying = True

        async def stop_when_the_client_goes() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if relaying:
                relay.cancel()

        watcher = asyncio.create_task(stop_when_the_client_goes())
        try:
            await self._relay(send)
        except asyncio.CancelledError:
            # Cancelled by the watcher: the client went away, which is not an error. Any
            # other cancellation (the server shutting down) goes on up.
            if not watcher.done() or relay.uncancel() > 0:
                raise
        finally:
            relaying = False
            watcher.cancel()
            # The relay's own clean-up (closing the upstream call, accounting) runs now, also
            # when it stopped while a chunk was being sent rather than inside the relay.
            await self.events.aclose()

    async def _relay(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for chunk in self.events:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
