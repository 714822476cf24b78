"""The routes on every model call and every tool call, answered ahead of the middleware stack.

Starlette and FastAPI wrap every request in six middleware layers (error pages, telemetry,
body limits, exception handlers, an exit stack) before routing, and FastAPI first checks on
every request whether OpenTelemetry is set up (the hub sets up no global provider: the
gateway's usage records are its telemetry); on the gateway's path that was over a tenth of
the hub's CPU per call. These routes need none of it: they answer their errors with the app's
own exception handlers, as the stack would.
"""

from collections.abc import Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

__all__ = ["HotRoutes"]

Endpoint = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class HotRoutes:
    """Answers a request to one of `routes` with the app's exception handlers."""

    def __init__(self, app: Starlette, routes: Sequence[Route]) -> None:
        self._app = app
        self._routes = routes

    async def answered(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer the request if it is for one of the routes; whether it was."""
        if scope["type"] != "http":
            return False
        for route in self._routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                # As Starlette's router does: the route's template labels the metrics.
                scope["route"] = route
                scope["app"] = self._app
                await self._answer(route.endpoint, scope, receive, send)
                return True
        return False

    async def _answer(self, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> ErrorHandler | None:
        for cls in type(exc).__mro__:
            if cls in self._app.exception_handlers:
                handler: ErrorHandler = self._app.exception_handlers[cls]
                return handler
        return None
