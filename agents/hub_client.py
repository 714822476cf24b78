"""The one client of the hub, for the chat app and the agent runtime in it: sign-ins, models,
agents, MCP servers and tool calls, run specs, shares and feedback. The runtime's model calls
go through the same HTTP client, to the hub's OpenAI-compatible gateway.

Every call carries the chat's own service token, and the request id of the chat turn it is
made for (hub/core/request_ids.py), which the hub passes on to the provider or MCP server; the
hub is the only thing that talks to providers and MCP servers. Failures surface as `HubError`
with a message fit to show a person in the chat, except tool calls: their failures are outcomes
the model reads (`ToolOutcome`).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode

import httpx
import orjson
from pydantic import ValidationError

from agents.spec import AgentSpec
from hub.core.request_ids import REQUEST_ID_HEADER, current_request_id

__all__ = [
    "AgentInfo",
    "HubClient",
    "HubError",
    "HubRefusedError",
    "HubUnavailableError",
    "HubUser",
    "McpServerInfo",
    "ModelInfo",
    "ToolOutcome",
    "path_segment",
    "result_text",
]

_CONNECT_TIMEOUT_S = 5.0
# The most pages of one list the client reads (of 100 items each, by default).
_MAX_PAGES = 100
# A tool call may take a while (a warehouse query); the hub has its own limit per server.
TOOL_CALL_TIMEOUT_S = 60.0
# The header the hub reads a person's session cookie from (the chat app only).
_SESSION = "x-switchboard-session"


def path_segment(value: str) -> str:
    """`value` as exactly one URL path segment: '/', '?', '#', '%' and the rest escaped, and
    a name of "." or ".." too (the HTTP client would take those as steps in the path). The
    hub's route decodes it back to `value`."""
    segment = quote(value, safe="")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    text: str
    is_error: bool
    # The tool's structured result (MCP structuredContent), when it gives one: what the chat
    # renders as a table and a chart.
    structured: dict[str, Any] | None = None


class HubError(Exception):
    """The hub refused or failed a request; `str(error)` is meant for the person chatting."""


class HubUnavailableError(HubError):
    """The hub could not be reached at all."""


class HubRefusedError(HubError):
    """The hub answered with a 4xx; `status` is its status code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    description: str = ""
    # From the model's catalog entry: it takes images in messages; tokens in and out per call
    # (None if not known).
    image_input: bool = False
    context_window: int | None = None


@dataclass(frozen=True, slots=True)
class HubUser:
    """A person signed in at the hub. `key` never changes and is never given to anyone else;
    the username is what the hub knows them by today."""

    key: str
    username: str
    display_name: str
    email: str | None
    role: str
    teams: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class McpToolInfo:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class McpServerInfo:
    slug: str
    name: str
    description: str
    tools: tuple[McpToolInfo, ...]


@dataclass(frozen=True, slots=True)
class AgentInfo:
    slug: str
    name: str
    description: str
    starters: tuple[str, ...]
    # True for the person's own agent that has no published version they run, only a draft.
    is_draft: bool


def _error_detail(response: httpx.Response) -> str:
    """The hub's own words from an error body (OpenAI `error.message` or FastAPI `detail`)."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if detail is not None:
            return orjson.dumps(detail).decode()
    return response.reason_phrase


async def _send_request_id(request: httpx.Request) -> None:
    if request_id := current_request_id():
        request.headers[REQUEST_ID_HEADER] = request_id


class HubClient:
    def __init__(self, *, hub_url: str, token: str) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.token = token
        self._http = httpx.AsyncClient(
            base_url=self.hub_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0, connect=_CONNECT_TIMEOUT_S),
            event_hooks={"request": [_send_request_id]},
        )

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client, for the runtime's model calls to the gateway (the OpenAI SDK sets
        its own URLs and time-outs per request)."""
        return self._http

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _unreachable(self) -> HubUnavailableError:
        return HubUnavailableError(
            f"The Switchboard hub at {self.hub_url} is not reachable. "
            "Check that it is running, then try again."
        )

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise self._unreachable() from error

    async def list_models(self) -> list[ModelInfo]:
        response = await self._request("GET", "/v1/models")
        if response.status_code != 200:
            raise HubError(f"The hub could not list models: {_error_detail(response)}")
        return [
            ModelInfo(
                id=str(item["id"]),
                description=str(item.get("description") or ""),
                image_input=bool((item.get("capabilities") or {}).get("image_input")),
                context_window=(item.get("capabilities") or {}).get("context_window"),
            )
            for item in response.json().get("data", [])
        ]

    async def session_user(self, token: str) -> HubUser | None:
        """The person a hub session cookie belongs to; None when it ended or expired."""
        response = await self._request("GET", "/api/auth/session", headers={_SESSION: token})
        if response.status_code in (401, 422):
            return None
        if response.status_code != 200:
            raise HubError(f"The hub could not check the sign-in: {_error_detail(response)}")
        body = response.json()
        return HubUser(
            key=str(body["key"]),
            username=str(body["username"]),
            display_name=str(body.get("display_name") or body["username"]),
            email=body.get("email"),
            role=str(body["role"]),
            teams=tuple(str(team) for team in body.get("teams") or ()),
        )

    async def end_session(self, token: str) -> None:
        """End a hub session (the person signed out of the chat)."""
        response = await self._request("POST", "/api/auth/session/end", headers={_SESSION: token})
        if response.status_code not in (204, 422):
            raise HubError(f"The hub could not end the sign-in: {_error_detail(response)}")

    async def _every_page(
        self, path: str, *, what: str, params: dict[str, str], headers: dict[str, str]
    ) -> list[Any]:
        """Every item of one of the hub's paged lists, following each page's `Link: rel=next`
        (a path on the hub), at most `_MAX_PAGES` of them."""
        items: list[Any] = []
        url: str | None = path
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            response = await self._request("GET", url, params=params, headers=headers)
            if response.status_code != 200:
                raise HubError(f"The hub could not list {what}: {_error_detail(response)}")
            items += response.json()
            following = response.links.get("next", {}).get("url", "")
            # The next page's link carries the whole query.
            on_the_hub = following.startswith("/") and not following.startswith("//")
            url = following if following and on_the_hub else None
            params = {}
        return items

    async def list_mcp_servers(self) -> list[McpServerInfo]:
        """The active MCP servers, with the tools they offer (none while under review)."""
        servers = await self._every_page(
            "/api/mcp/servers", what="MCP servers", params={"status": "active"}, headers={}
        )
        return [
            McpServerInfo(
                slug=str(item["slug"]),
                name=str(item["name"]),
                description=str(item.get("description") or ""),
                tools=tuple(
                    McpToolInfo(
                        name=str(tool["name"]),
                        description=str(tool.get("description") or ""),
                        input_schema=dict(tool.get("input_schema") or {}),
                    )
                    for tool in item.get("tools", [])
                ),
            )
            for item in servers
        ]

    async def list_agents(self, *, user: str) -> list[AgentInfo]:
        """The published agents `user` may use, then their own drafts (to try them)."""
        headers = {"X-Switchboard-User": user}
        published = await self._every_page("/api/agents", what="agents", params={}, headers=headers)
        mine = await self._every_page(
            "/api/agents", what="agents", params={"mine": "true"}, headers=headers
        )
        agents = [
            AgentInfo(
                slug=str(item["slug"]),
                name=str(item["name"]),
                description=str(item.get("description") or ""),
                starters=tuple(item.get("starters") or ()),
                is_draft=False,
            )
            for item in published
            if item.get("live_version") is not None
        ]
        agents += [
            AgentInfo(
                slug=str(item["slug"]),
                name=str(item["name"]),
                description=str(item.get("description") or ""),
                starters=tuple(item.get("starters") or ()),
                is_draft=True,
            )
            for item in mine
            if item.get("owner") == user
        ]
        return agents

    async def agent_run_spec(self, *, slug: str, user: str, draft: bool) -> AgentSpec:
        """What the runtime needs to run the agent's live version (or its owner's draft)."""
        path = f"/api/agents/{path_segment(slug)}/" + ("draft-run-spec" if draft else "live")
        return await self._run_spec(path, user=user, refused="The agent cannot run")

    async def model_chat_spec(self, *, model: str, servers: list[str], user: str) -> AgentSpec:
        """What the runtime needs for `user` to chat with `model` and the servers switched on."""
        path = "/api/model-chat/run-spec?" + urlencode({"model": model, "server": servers}, True)
        return await self._run_spec(path, user=user, refused=f"Cannot chat with {model}")

    async def _run_spec(self, path: str, *, user: str, refused: str) -> AgentSpec:
        response = await self._request("GET", path, headers={"X-Switchboard-User": user})
        if response.status_code != 200:
            raise HubError(f"{refused}: {_error_detail(response)}")
        try:
            return AgentSpec.model_validate_json(response.content)
        except ValidationError as error:
            raise HubError(f"{refused}: the hub's answer is not a run spec ({error}).") from error

    async def _for_person(
        self,
        method: str,
        path: str,
        *,
        user: str,
        expect: int,
        json: Any = None,
        params: dict[str, str | int] | None = None,
    ) -> httpx.Response:
        """A request acting for `user`; anything but `expect` is the hub refusing them."""
        response = await self._request(
            method, path, json=json, params=params, headers={"X-Switchboard-User": user}
        )
        if response.status_code != expect:
            raise HubRefusedError(response.status_code, _error_detail(response))
        return response

    async def create_share(self, *, user: str, body: dict[str, Any]) -> dict[str, Any]:
        """Share a snapshot of `user`'s conversation; the hub's description of the link."""
        response = await self._for_person("POST", "/api/shares", user=user, expect=201, json=body)
        share: dict[str, Any] = response.json()
        return share

    async def read_share(self, *, user: str, share_id: str) -> dict[str, Any]:
        """The shared snapshot behind a link, as `user` may read it."""
        path = f"/api/shares/{path_segment(share_id)}"
        share: dict[str, Any] = (await self._for_person("GET", path, user=user, expect=200)).json()
        return share

    async def search_shared(self, *, user: str, query: str, limit: int) -> list[dict[str, Any]]:
        """The first `limit` matches of `query` in the conversations others shared with `user`
        (hub/models/share.py `SharedMatch`), best first."""
        response = await self._for_person(
            "GET",
            "/api/shares/search",
            user=user,
            expect=200,
            params={"q": query, "limit": limit},
        )
        matches: list[dict[str, Any]] = response.json()
        return matches

    async def record_feedback(self, *, user: str, body: dict[str, Any]) -> dict[str, Any]:
        """Store `user`'s thumbs and comment on an answer at the hub (it replaces theirs)."""
        response = await self._for_person("PUT", "/api/feedback", user=user, expect=200, json=body)
        feedback: dict[str, Any] = response.json()
        return feedback

    async def delete_feedback(self, *, user: str, message_id: str) -> None:
        """Take back `user`'s feedback on a message at the hub."""
        path = f"/api/feedback/{path_segment(message_id)}"
        await self._for_person("DELETE", path, user=user, expect=204)

    async def forget_conversation(self, conversation_id: str) -> None:
        """Tell the hub a conversation was deleted: its traces go, after the hub's audit
        period (`deleted_conversation_trace_days`)."""
        query = urlencode({"conversation": conversation_id})
        response = await self._request("DELETE", f"/api/traces?{query}")
        if response.status_code != 204:
            raise HubError(
                f"The hub could not forget conversation {conversation_id!r}: "
                f"{_error_detail(response)}"
            )

    async def call_tool(
        self,
        *,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        user: str,
        context: Mapping[str, str] | None = None,
    ) -> ToolOutcome:
        """Call a tool through `POST /api/mcp/servers/{server}/tools/{tool}/call` for `user`.
        Every failure comes back as an error outcome, never as an exception, so the model can
        read what went wrong and try something else."""
        # Server and tool names come from registered servers: escaped, they stay in their segment.
        path = f"/api/mcp/servers/{path_segment(server)}/tools/{path_segment(tool)}/call"
        # The hub passes the context on to the server (MCP _meta), e.g. as warehouse labels.
        body = {
            "arguments": arguments,
            "on_behalf_of": user,
            "context": {key: value for key, value in (context or {}).items() if value},
        }
        try:
            response = await self._http.post(
                path, json=body, timeout=httpx.Timeout(TOOL_CALL_TIMEOUT_S, connect=5.0)
            )
        except httpx.HTTPError as exc:
            return ToolOutcome(f"Could not reach the hub to call {tool}: {exc!r}", True)
        if response.status_code != 200:
            return ToolOutcome(
                f"The hub refused the call to {tool} ({response.status_code}): "
                f"{_error_detail(response)}",
                True,
            )
        try:
            result = response.json()
        except ValueError:
            return ToolOutcome(f"The hub's answer for {tool} was not JSON.", True)
        text = result_text(result)
        if result.get("isError"):
            return ToolOutcome(f"The tool {tool} failed: {text}", True)
        structured = result.get("structuredContent")
        return ToolOutcome(text, False, structured if isinstance(structured, dict) else None)


def result_text(result: dict[str, Any]) -> str:
    """An MCP CallToolResult as the text a model reads."""
    parts: list[str] = []
    for item in result.get("content") or []:
        if item.get("type") == "text":
            parts.append(str(item.get("text", "")))
        else:
            parts.append(f"[{item.get('type', 'unknown')} content]")
    if not parts and result.get("structuredContent") is not None:
        return orjson.dumps(result["structuredContent"]).decode()
    return "\n".join(parts)
