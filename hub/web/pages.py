"""The hub's pages for people: the MCP registry, a server's page, the register form (signing
in and out is in hub/web/sign_in.py).

Pages use the same registry calls as the API. Forms post back to the page; the session
cookie is SameSite=Lax, so another site cannot post them on a person's behalf.
"""

from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from hub.api.deps import HubStateDep, OptionalActor, RegistryDep
from hub.api.errors import status_of
from hub.core.errors import NotFoundError, Refusal
from hub.models.actor import Actor
from hub.models.mcp_server import McpServerCreate, McpStatus
from hub.services import mcp_servers as store
from hub.state import HubState
from hub.web.schema import schema_rows

__all__ = ["chat_address", "page", "problems", "refusal_of", "router", "templates", "to_login"]

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
templates.env.globals["schema_rows"] = schema_rows


def chat_address(request: Request) -> str:
    """Where the chat is, for the header's link back to it."""
    hub_state: HubState = request.app.state.hub
    return hub_state.settings.app_public_url


templates.env.globals["chat_address"] = chat_address


def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    return templates.TemplateResponse(request, name, context, status_code=status)


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/servers", status_code=303)


@router.get("/servers")
async def servers_page(
    request: Request,
    actor: OptionalActor,
    hub_state: HubStateDep,
    q: str = "",
    tag: str = "",
    team: str = "",
) -> Response:
    if actor is None:
        return to_login(request)

    def load() -> list[Any]:
        with Session(hub_state.engine) as session:
            found = store.list_servers(session=session, text=q, tag=tag, team=team)
            return [store.to_public(session=session, server=server) for server in found]

    servers = await anyio.to_thread.run_sync(load)
    return page(request, "servers.html", actor=actor, servers=servers, q=q, tag=tag, team=team)


_FORM_FIELDS = ("name", "slug", "description", "team", "url", "transport", "tags")


@router.get("/servers/new")
async def new_server_form(request: Request, actor: OptionalActor) -> Response:
    if actor is None:
        return to_login(request)
    return page(request, "server_new.html", actor=actor, form={}, error=None)


def problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in error.errors()
    )


def refusal_of(error: ValidationError | Refusal) -> tuple[int, str]:
    """The status and message of a form the hub refused, to show above the form."""
    if isinstance(error, ValidationError):
        return 422, f"Please fix: {problems(error)}"
    return status_of(error), error.message


@router.post("/servers/new")
async def register_from_form(
    request: Request, actor: OptionalActor, registry: RegistryDep
) -> Response:
    if actor is None:
        return to_login(request)
    form = await request.form()
    values = {key: str(form.get(key, "")).strip() for key in (*_FORM_FIELDS, "auth_header_name")}
    secret = str(form.get("auth_header_value", ""))
    try:
        server_in = McpServerCreate.model_validate(
            {
                **{key: values[key] for key in ("name", "slug", "description", "team", "url")},
                "transport": values["transport"] or "streamable_http",
                "tags": [tag for tag in values["tags"].split(",") if tag.strip()],
                "auth_header_name": values["auth_header_name"] or None,
                "auth_header_value": secret or None,
            }
        )
        created = await registry.register(server_in, actor)
    except ValidationError as error:
        return page(
            request,
            "server_new.html",
            status=422,
            actor=actor,
            form=values,
            error=f"Please fix: {problems(error)}",
        )
    except Refusal as error:
        return page(
            request,
            "server_new.html",
            status=status_of(error),
            actor=actor,
            form=values,
            error=error.message,
        )
    return RedirectResponse(f"/servers/{created.slug}", status_code=303)


async def _server_page(
    request: Request,
    actor: Actor,
    registry: Any,
    slug: str,
    status: int = 200,
    error: str | None = None,
) -> Response:
    server = await registry.public(slug)
    return page(
        request,
        "server.html",
        status=status,
        actor=actor,
        server=server,
        can_manage=actor.can_manage(server.team),
        stats=await registry.stats(slug),
        snapshots=await registry.snapshots(slug),
        error=error,
        notice=None,
    )


@router.get("/servers/{slug}")
async def server_page(
    request: Request, slug: str, actor: OptionalActor, registry: RegistryDep
) -> Response:
    if actor is None:
        return to_login(request)
    try:
        return await _server_page(request, actor, registry, slug)
    except Refusal as error:
        return page(
            request,
            "servers.html",
            status=status_of(error),
            actor=actor,
            servers=[],
            q=slug,
            tag="",
            team="",
        )


@router.post("/servers/{slug}/{action}")
async def server_action(
    request: Request, slug: str, action: str, actor: OptionalActor, registry: RegistryDep
) -> Response:
    if actor is None:
        return to_login(request)
    try:
        if action == "approve":
            digest = str((await request.form()).get("digest", "")) or None
            await registry.approve(slug, actor, digest)
        elif action == "check":
            await registry.check(slug, actor)
        elif action in ("disable", "enable"):
            status = McpStatus.disabled if action == "disable" else McpStatus.active
            await registry.set_status(slug, status, actor)
        else:
            raise NotFoundError(f"There is no action {action!r} on a server.")
    except Refusal as error:
        return await _server_page(request, actor, registry, slug, status_of(error), error.message)
    return RedirectResponse(f"/servers/{slug}", status_code=303)
