"""An independent MCP server for tests: a small weather service over streamable HTTP.

`McpTestServer` runs it on a fixed 127.0.0.1 port in a thread and can stop it, start it
again and redeploy it with another tool description, as a team would. It answers calls with
SSE streams, or with JSON bodies (`json_response`), or speaks the older SSE transport.
With `odd_names` it also offers names a hostile or careless team might choose.
"""

from types import TracebackType
from typing import Any, Self

import anyio
import httpx
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from tests.support.servers import ThreadedServer, free_port

__all__ = [
    "CRAFTED_PROMPT",
    "CRAFTED_RESOURCE",
    "CRAFTED_TOOL",
    "DEFAULT_DESCRIPTION",
    "DOTTED_TOOL",
    "McpTestServer",
    "build_weather_server",
    "register_weather",
]

DEFAULT_DESCRIPTION = "Current weather for a city: temperature in Celsius and the sky."
# Names offered with `odd_names`: a tool name that would climb out of the hub's call URL, a
# legitimate one with a dot, and prompt and resource names with control characters.
CRAFTED_TOOL = "../../../v1/usage"
DOTTED_TOOL = "weather.today"
CRAFTED_PROMPT = "brief\x1b[31m"
CRAFTED_RESOURCE = "notes\nInjected: yes"


def build_weather_server(
    description: str = DEFAULT_DESCRIPTION,
    required_header: tuple[str, str] | None = None,
    json_response: bool = False,
    interactive: bool = False,
    odd_names: bool = False,
) -> FastMCP:
    server = FastMCP(
        "weather", instructions="Weather for the office cities.", json_response=json_response
    )
    seen: list[dict[str, str]] = []
    seen_meta: list[dict[str, Any]] = []

    @server.tool(description=description)
    def get_weather(city: str, ctx: Context[Any, Any, Any]) -> dict[str, Any]:
        meta = ctx.request_context.meta
        seen_meta.append(meta.model_dump() if meta is not None else {})
        if not city.strip():
            raise ToolError("Give a city name, e.g. 'Lisbon'.")
        return {"city": city, "temperature_c": 10 + len(city), "sky": "clear"}

    @server.tool()
    def flaky_forecast(days: int) -> str:
        """A forecast that always fails, to test how errors come back."""
        raise ToolError(f"the forecast service is down; cannot forecast {days} days")

    if interactive:
        _add_interactive_tools(server)
    if odd_names:
        _add_odd_names(server)
    server.seen_headers = seen  # type: ignore[attr-defined]
    server.seen_meta = seen_meta  # type: ignore[attr-defined]
    if required_header is None:
        return server
    name, value = required_header
    app = server.streamable_http_app()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            seen.append(headers)
            if headers.get(name.lower()) != value:
                response: Response = JSONResponse({"error": "bad key"}, status_code=401)
                await response(scope, receive, send)
                return
        await app(scope, receive, send)

    server.guarded_app = guarded  # type: ignore[attr-defined]
    return server


def _add_interactive_tools(server: FastMCP) -> None:
    """Tools that take their time or talk back during a call (log lines, a question)."""

    @server.tool()
    async def weather_report(city: str, ctx: Context[Any, Any, Any]) -> str:
        """A weather report; it logs its progress while it works."""
        await ctx.info(f"looking up {city}")
        await ctx.info("writing the report")
        return f"{city}: clear skies"

    @server.tool()
    async def slow_weather(city: str, seconds: float) -> str:
        """The weather, after a wait."""
        await anyio.sleep(seconds)
        return f"{city}: clear skies"

    @server.tool()
    def long_report(megabytes: int) -> str:
        """A report of the given size."""
        return "x" * (megabytes * 1024 * 1024)

    @server.tool()
    async def confirm_city(city: str, ctx: Context[Any, Any, Any]) -> str:
        """Asks the user to confirm the city before answering."""
        answer = await ctx.elicit(f"Did you mean {city}?", _Confirmation)
        return f"{city}: {answer.action}"


def _add_odd_names(server: FastMCP) -> None:
    @server.tool(name=CRAFTED_TOOL)
    def crafted(city: str) -> str:
        """Looks like weather; its name points at the hub's usage route."""
        return f"{city}: clear skies"

    @server.tool(name=DOTTED_TOOL, description="Today's weather <script>alert(1)</script>.")
    def today(city: str) -> str:
        return f"{city} today: clear skies"

    @server.prompt(name="forecast_brief")
    def forecast_brief(city: str) -> str:
        """A prompt asking for a short forecast."""
        return f"Give a short forecast for {city}."

    @server.prompt(name=CRAFTED_PROMPT)
    def crafted_prompt() -> str:
        return "A prompt with a terminal escape in its name."

    @server.resource("weather://cities", name="cities")
    def cities() -> str:
        return "Lisbon, Oslo"

    @server.resource("weather://notes", name=CRAFTED_RESOURCE)
    def notes() -> str:
        return "A resource with a line break in its name."


def register_weather(client: httpx.Client, url: str, **extra: object) -> httpx.Response:
    """Register the server at `url` as team weather's `weather` through the API."""
    body = {
        "slug": "weather",
        "name": "Weather",
        "description": "Forecasts and current conditions for office cities.",
        "team": "weather",
        "url": url,
        "tags": ["Weather", "demo"],
        **extra,
    }
    return client.post("/api/mcp/servers", json=body)


class _Confirmation(BaseModel):
    yes: bool


class McpTestServer:
    def __init__(
        self,
        description: str = DEFAULT_DESCRIPTION,
        required_header: tuple[str, str] | None = None,
        *,
        json_response: bool = False,
        interactive: bool = False,
        odd_names: bool = False,
        transport: str = "streamable_http",
    ) -> None:
        self.port = free_port()
        self.description = description
        self.required_header = required_header
        self.json_response = json_response
        self.interactive = interactive
        self.odd_names = odd_names
        self.transport = transport
        self.mcp: FastMCP | None = None
        self._server: ThreadedServer | None = None

    @property
    def url(self) -> str:
        path = "/sse" if self.transport == "sse" else "/mcp"
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        # A FastMCP app runs its session manager once, so every start builds a new one.
        self.mcp = build_weather_server(
            self.description,
            self.required_header,
            self.json_response,
            self.interactive,
            self.odd_names,
        )
        if self.transport == "sse":
            app = self.mcp.sse_app()
        else:
            app = getattr(self.mcp, "guarded_app", None) or self.mcp.streamable_http_app()
        self._server = ThreadedServer(app, port=self.port)
        self._server.__enter__()

    def stop(self) -> None:
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None

    def redeploy(self, description: str) -> None:
        self.stop()
        self.description = description
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
