"""Every HTTP request to the hub, observed from its first byte to its last, around everything
else (the cross-site check, the hot routes, the middleware stack):

- its request id: the caller's `X-Request-ID` when it is short and safe, else a new one. It is
  the current id while the request is answered (log lines, and the calls the hub makes for it:
  hub/core/request_ids.py), and it goes back on the response;
- its count and duration in the metrics, by the template of the route that answered it
  (`/api/agents/{slug}`, never the path itself) and its status class.
"""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.core.metrics import HttpMetrics
from hub.core.request_ids import REQUEST_ID_HEADER, RequestIdScope, accepted_request_id

__all__ = ["observe_request"]

_HEADER = REQUEST_ID_HEADER.encode()
# The label of a request no route answered (a 404): its path is not a label.
UNMATCHED = "unmatched"
# Any other method (a client may send any word) is counted as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _sent_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == _HEADER:
            return str(value.decode("latin-1"))
    return None


async def observe_request(
    scope: Scope, receive: Receive, send: Send, app: ASGIApp, metrics: HttpMetrics
) -> None:
    """Answer an HTTP request with `app`, observed."""
    started = time.perf_counter()
    request_id = accepted_request_id(_sent_request_id(scope))
    status = 500  # what the server answers when the app fails before its response

    async def send_with_id(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            message["headers"] = [*message.get("headers", ()), (_HEADER, request_id.encode())]
        await send(message)

    try:
        with RequestIdScope(request_id):
            await app(scope, receive, send_with_id)
    finally:
        route = getattr(scope.get("route"), "path", None) or UNMATCHED
        method = scope["method"] if scope["method"] in _METHODS else "other"
        metrics.observe(method, route, status, time.perf_counter() - started)
