"""The least a Python gateway can do, as a floor under the hub's figures: it forwards
`POST /v1/chat/completions` to the upstream's `/chat/completions` and sends the answer back as
it comes, and does nothing else (no key, no catalog, no accounting). It runs on the hub's
stack: uvicorn on uvloop with httptools, and aiohttp to the upstream with connections kept.

    BARE_PROXY_UPSTREAM=http://127.0.0.1:PORT python -m uvicorn bench.bare_proxy:app --port N
"""

import os
from typing import Any

import aiohttp

__all__ = ["app"]

_UPSTREAM = os.environ.get("BARE_PROXY_UPSTREAM", "")
_session: aiohttp.ClientSession | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _session
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            if message["type"] == "lifespan.startup":
                # Idle connections closed before the upstream's uvicorn closes them (5 s), so
                # none is reused as it closes.
                connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=4)
                _session = aiohttp.ClientSession(connector=connector)
                await send({"type": "lifespan.startup.complete"})
        if _session is not None:
            await _session.close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["method"] == "GET":  # the benchmark's "is it up?"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    assert _session is not None
    headers = {"content-type": "application/json", "authorization": "Bearer unused"}
    async with _session.post(_UPSTREAM + "/chat/completions", data=body, headers=headers) as up:
        content_type = up.headers.get("content-type", "application/json").encode()
        await send(
            {
                "type": "http.response.start",
                "status": up.status,
                "headers": [(b"content-type", content_type)],
            }
        )
        async for piece in up.content.iter_any():
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
