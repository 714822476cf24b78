"""Links from the chat's header to its search page and to the hub's pages the person may use.

Chainlit 2.12 draws `ui.header_links` from the settings the page asks for at
`GET /project/settings`, and takes them from config.toml: the same links for everyone. This
route answers in Chainlit's place with Chainlit's own answer and the links for the person
signed in, by their role as the hub knows it now (from the hub session the sign-in gate
checked). The hub session cookie is shared, so a link lands on the hub signed in.
"""

import json
import logging
from typing import Annotated

from chainlit import server as chainlit_server
from chainlit.auth import get_current_user
from chainlit.config import HeaderLink
from chainlit.user import PersistedUser, User
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from starlette.responses import JSONResponse, Response

from agents.hub_client import HubError
from app.conversation_routes import CONVERSATIONS_ROUTE
from app.search_page import SEARCH_ROUTE
from app.sign_in import HubSessions
from hub.core.roles import Permission, Role, allows
from hub.identity.cookies import SESSION_COOKIE

__all__ = ["add_hub_links", "header_links"]

logger = logging.getLogger(__name__)

# (label, the hub's path, icon in public/icons/)
_FOR_EVERYONE = (
    ("Agents", "/agents", "agents.svg"),
    ("Prompts", "/prompts", "prompts.svg"),
    ("Evaluation", "/evaluation", "evaluation.svg"),
    ("MCP servers", "/servers", "servers.svg"),
    ("Traces", "/traces", "traces.svg"),
)
_FOR_ADMINS = (
    ("Costs", "/costs", "costs.svg"),
    ("Gateway", "/gateway", "gateway.svg"),
    ("Sessions", "/sessions", "sessions.svg"),
)
# Chainlit's own rule for the language parameter (it names a markdown file).
_LANGUAGE = "^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,4})?(-[a-zA-Z0-9]{2,8})?(-x-[a-zA-Z0-9]{1,8})?$"


def header_links(*, hub_url: str, role: str | None) -> list[HeaderLink]:
    """The chat's search, its export and import page, and the hub's pages for `role` (None:
    someone the hub does not know; no links)."""
    try:
        known = Role(role or "")
    except ValueError:
        return []
    pages: tuple[tuple[str, str, str], ...] = _FOR_EVERYONE
    if allows(known, Permission.administer):
        pages += _FOR_ADMINS
    search = HeaderLink(
        name="Search your conversations",
        display_name="Search",
        icon_url="/public/icons/search.svg",
        url=SEARCH_ROUTE,
        target="_self",
    )
    conversations = HeaderLink(
        name="Export or import your conversations",
        display_name="Export",
        icon_url="/public/icons/conversations.svg",
        url=CONVERSATIONS_ROUTE,
        target="_self",
    )
    return [search, conversations] + [
        HeaderLink(
            name=f"{label} in the hub",
            display_name=label,
            icon_url=f"/public/icons/{icon}",
            url=hub_url.rstrip("/") + path,
            target="_self",
        )
        for label, path, icon in pages
    ]


def add_hub_links(app: FastAPI, *, sessions: HubSessions, hub_url: str) -> None:
    """Answer `GET /project/settings` with the person's links. The route goes first, ahead of
    Chainlit's own."""
    router = APIRouter()

    @router.get("/project/settings")
    async def project_settings(
        request: Request,
        current_user: Annotated[User | PersistedUser | None, Depends(get_current_user)],
        language: Annotated[str, Query(pattern=_LANGUAGE)] = "en-US",
        chat_profile: str | None = None,
    ) -> Response:
        answer = await chainlit_server.project_settings(
            current_user=current_user, language=language, chat_profile=chat_profile
        )
        settings = json.loads(bytes(answer.body))
        token = request.cookies.get(SESSION_COOKIE)
        try:
            person = await sessions.person(token) if token else None
        except HubError as error:
            logger.warning("cannot check a sign-in at the hub: %s", error)
            person = None
        links = header_links(hub_url=hub_url, role=person.role if person else None)
        settings["ui"]["header_links"] = [link.model_dump() for link in links]
        return JSONResponse(settings)

    app.include_router(router)
    added = app.router.routes.pop()
    app.router.routes.insert(0, added)
