"""The search page of the chat: `GET /switchboard/search` (HTML) and
`GET /switchboard/search.json` (the same results for programs), over the signed-in person's
own conversations, and (from the hub) the conversations others shared with them.

A result links to `/thread/{id}#step-{message id}`: Chainlit opens the conversation and
`public/open_at_step.js` scrolls to that message (Chainlit gives each message the element id
`step-{id}`). The routes go first, ahead of Chainlit's, which answers every other GET path
with its page.
"""

import html
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from chainlit.auth import get_current_user
from chainlit.data import get_data_layer
from chainlit.user import PersistedUser, User
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import HTMLResponse, JSONResponse

from agents.hub_client import HubClient, HubError
from app.chainlit_routes import hub_username
from app.data_layer import SwitchboardDataLayer
from app.search import SearchHit, SearchQuery, search_conversations
from hub.core.full_text import MAX_WORDS, word_count, words_of

__all__ = ["SEARCH_ROUTE", "add_search_routes"]

logger = logging.getLogger(__name__)

SEARCH_ROUTE = "/switchboard/search"
PAGE_SIZE = 20
# Matches in conversations shared with the person, above their own results' first page.
SHARED_SHOWN = 10
MAX_LIMIT = 100
MAX_OFFSET = 10_000
MAX_QUERY = 500
MAX_FILTER = 200

_CurrentUser = Annotated[User | PersistedUser | None, Depends(get_current_user)]
_FILTERS = ("model", "agent", "server", "since", "until")


class SearchInputError(ValueError):
    """What is wrong with a search's parameters, said to the person."""


@dataclass(frozen=True, slots=True)
class _Form:
    q: str
    model: str
    agent: str
    server: str
    since: str
    until: str


def _date(name: str, value: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SearchInputError(
            f"'{name}' must be a date written YYYY-MM-DD, such as 2026-03-31; got {value[:40]!r}."
        ) from None


def _query(form: _Form) -> SearchQuery:
    if len(form.q) > MAX_QUERY:
        raise SearchInputError(
            f"A search is at most {MAX_QUERY} characters; this one has {len(form.q)}. Shorten it."
        )
    if word_count(form.q) > MAX_WORDS:
        raise SearchInputError(f"A search takes at most {MAX_WORDS} words. Leave some out.")
    for name in ("model", "agent", "server"):
        value = getattr(form, name)
        if len(value) > MAX_FILTER or "\x00" in value:
            raise SearchInputError(
                f"'{name}' must be a name of at most {MAX_FILTER} characters, without NUL."
            )
    since, until = _date("since", form.since), _date("until", form.until)
    if since is not None and until is not None and since > until:
        raise SearchInputError("'since' is after 'until': swap them to search between the two.")
    return SearchQuery(
        words=words_of(form.q),
        model=form.model or None,
        agent=form.agent or None,
        server=form.server or None,
        since=since,
        until=until,
    )


def _link(hit: SearchHit) -> str:
    thread = f"/thread/{quote(hit.thread_id, safe='')}"
    return thread if hit.step_id is None else f"{thread}#step-{quote(hit.step_id, safe='')}"


def _engine() -> AsyncEngine:
    layer = get_data_layer()
    if not isinstance(layer, SwitchboardDataLayer):
        raise HTTPException(503, "The chat keeps no conversations here.")
    return layer.engine


def _owner(user: User | PersistedUser | None) -> str:
    if user is None:
        raise HTTPException(401, "Sign in to the chat to search your conversations.")
    return user.identifier


def _highlighted(snippet: str, words: list[str]) -> str:
    """`snippet` as HTML, the words searched for (and longer ones they begin) marked."""
    if not words:
        return html.escape(snippet)
    pattern = re.compile(
        r"(?<![^\W_])(?:" + "|".join(re.escape(word) for word in words) + r")[^\W_]*",
        re.IGNORECASE,
    )
    parts, at = [], 0
    for match in pattern.finditer(snippet):
        parts.append(html.escape(snippet[at : match.start()]))
        parts.append(f"<mark>{html.escape(match.group())}</mark>")
        at = match.end()
    parts.append(html.escape(snippet[at:]))
    return "".join(parts)


def _when(created_at: str) -> str:
    return created_at[:16].replace("T", " ") + " UTC" if created_at else ""


_STYLE = (
    "body{font:15px system-ui,sans-serif;margin:2rem auto;max-width:52rem;padding:0 1rem;"
    "color:#0f172a}form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:1rem 0}"
    "label{display:flex;flex-direction:column;font-size:12px;color:#475569}"
    "input{font:inherit;padding:.3rem .45rem;border:1px solid #cbd5e1;border-radius:6px}"
    "input[name=q]{width:22rem}button{font:inherit;padding:.35rem .9rem}"
    "ol{list-style:none;padding:0}li{margin:0 0 1rem}.when{color:#64748b;font-size:12px}"
    ".snippet{margin:.2rem 0;color:#334155}mark{background:#fde68a}"
    ".error{color:#b91c1c}nav a{margin-right:1rem}"
)


def _page(form: _Form, body: str, status: int = 200) -> HTMLResponse:
    def field(name: str, label: str, kind: str = "text", hint: str = "") -> str:
        value = html.escape(getattr(form, name), quote=True)
        return (
            f"<label>{label}<input type='{kind}' name='{name}' value='{value}' "
            f"placeholder='{html.escape(hint, quote=True)}'></label>"
        )

    page = (
        "<!doctype html><html lang='en'><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<title>Search your conversations · Switchboard</title>"
        f"<style>{_STYLE}</style><body><p><a href='/'>← Back to the chat</a></p>"
        "<h1>Search your conversations</h1>"
        f"<form method='get' action='{SEARCH_ROUTE}' role='search'>"
        + field("q", "Words", "search", "revenue by region")
        + field("model", "Model")
        + field("agent", "Agent")
        + field("server", "MCP server")
        + field("since", "From", "date")
        + field("until", "To", "date")
        + "<button type='submit'>Search</button></form>"
        + body
        + "</body></html>"
    )
    return HTMLResponse(page, status_code=status, headers={"Referrer-Policy": "no-referrer"})


def _results_html(form: _Form, query: SearchQuery, hits: list[SearchHit], page: int) -> str:
    if not query.words:
        return "<p>Type the words to look for: titles, messages, tool results and SQL.</p>"
    if not hits:
        return "<p id='no-results'>Nothing found in your conversations.</p>"
    items = "".join(
        f"<li class='result'><a href='{html.escape(_link(hit), quote=True)}'>"
        f"{html.escape(hit.thread_name or 'Untitled conversation')}</a> "
        f"<span class='when'>{html.escape(_when(hit.created_at))}"
        f"{'' if hit.step_id else ' · title'}</span>"
        f"<p class='snippet'>{_highlighted(hit.snippet, query.words)}</p></li>"
        for hit in hits[:PAGE_SIZE]
    )
    parameters = {"q": form.q} | {name: getattr(form, name) for name in _FILTERS}
    kept = {name: value for name, value in parameters.items() if value}
    links = []
    if page > 1:
        earlier = urlencode(kept | {"page": page - 1})
        links.append(f"<a rel='prev' href='{SEARCH_ROUTE}?{html.escape(earlier)}'>Previous</a>")
    if len(hits) > PAGE_SIZE:
        later = urlencode(kept | {"page": page + 1})
        links.append(f"<a rel='next' href='{SEARCH_ROUTE}?{html.escape(later)}'>Next</a>")
    return f"<ol id='results'>{items}</ol><nav>{''.join(links)}</nav>"


@dataclass(frozen=True, slots=True)
class _Shared:
    """Matches in conversations shared with the person, or why the hub could not say."""

    matches: list[dict[str, Any]]
    failure: str = ""


async def _shared(
    hub: Callable[[], HubClient],
    user: User | PersistedUser | None,
    form: _Form,
    query: SearchQuery,
) -> _Shared | None:
    """The shared conversations that match, for a plain search (filters are about one's own
    conversations: their models, agents and servers)."""
    name = hub_username(user) if user is not None else None
    if not query.words or name is None or any(getattr(form, key) for key in _FILTERS):
        return None
    try:
        matches = await hub().search_shared(user=name, query=form.q, limit=SHARED_SHOWN)
    except HubError as error:
        logger.warning("cannot search the conversations shared with %s: %s", name, error)
        return _Shared([], failure=str(error))
    return _Shared(matches)


def _shared_html(shared: _Shared | None, words: list[str]) -> str:
    if shared is None:
        return ""
    if shared.failure:
        return (
            "<p class='error' id='shared-failure'>Conversations shared with you could not be "
            f"searched: {html.escape(shared.failure)}</p>"
        )
    if not shared.matches:
        return ""
    items = "".join(
        f"<li class='result'><a href='{html.escape(str(match['url']), quote=True)}'>"
        f"{html.escape(str(match['title']))}</a> "
        f"<span class='when'>shared by {html.escape(str(match['owner_name']))}"
        f"{'' if match.get('step_number') else ' · title'}</span>"
        f"<p class='snippet'>{_highlighted(str(match['snippet']), words)}</p></li>"
        for match in shared.matches
    )
    return f"<h2>Shared with you</h2><ol id='shared-results'>{items}</ol><h2>Yours</h2>"


def add_search_routes(app: FastAPI, *, hub: Callable[[], HubClient]) -> None:
    router = APIRouter()

    @router.get(SEARCH_ROUTE)
    async def search_page(
        current_user: _CurrentUser,
        q: str = "",
        model: str = "",
        agent: str = "",
        server: str = "",
        since: str = "",
        until: str = "",
        page: Annotated[int, Query(ge=1, le=MAX_OFFSET // PAGE_SIZE)] = 1,
    ) -> HTMLResponse:
        """The search form and a page of results, best first."""
        form = _Form(q, model, agent, server, since, until)
        owner = _owner(current_user)
        try:
            query = _query(form)
        except SearchInputError as error:
            return _page(form, f"<p class='error'>{html.escape(str(error))}</p>", status=422)
        hits = await search_conversations(
            _engine(), owner, query, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
        )
        shared = await _shared(hub, current_user, form, query) if page == 1 else None
        return _page(
            form,
            _shared_html(shared, query.words) + _results_html(form, query, hits, page),
        )

    @router.get(SEARCH_ROUTE + ".json")
    async def search_json(
        current_user: _CurrentUser,
        q: str = "",
        model: str = "",
        agent: str = "",
        server: str = "",
        since: str = "",
        until: str = "",
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = PAGE_SIZE,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> JSONResponse:
        """The same search for programs: results with their links, and whether more follow."""
        owner = _owner(current_user)
        try:
            query = _query(_Form(q, model, agent, server, since, until))
        except SearchInputError as error:
            raise HTTPException(422, str(error)) from error
        hits = await search_conversations(_engine(), owner, query, limit=limit + 1, offset=offset)
        results: list[dict[str, Any]] = [asdict(hit) | {"url": _link(hit)} for hit in hits[:limit]]
        return JSONResponse(
            {"results": results, "limit": limit, "offset": offset, "more": len(hits) > limit}
        )

    app.include_router(router)
    added = app.router.routes.pop()
    app.router.routes.insert(0, added)
