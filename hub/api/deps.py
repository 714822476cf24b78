"""Injected types for routes, declared once."""

from collections.abc import Callable, Iterator
from typing import Annotated

import anyio
from fastapi import Depends, Path, Request
from sqlmodel import Session

from hub.core.config import APP_SERVICE_NAME
from hub.core.errors import PermissionDeniedError, UnauthenticatedError
from hub.core.roles import Permission, Role
from hub.gateway.proxy import Gateway
from hub.identity.cookies import SESSION_COOKIE
from hub.mcp.registry import McpRegistry
from hub.models.actor import Actor
from hub.models.user import User
from hub.services.service_accounts import ServiceIdentity
from hub.services.users import get_user
from hub.services.web_sessions import user_for_web_session
from hub.state import HubState

__all__ = [
    "ACTING_FOR_HEADER",
    "SESSION_COOKIE",
    "AdminActor",
    "AdminService",
    "BuilderActor",
    "ChatApp",
    "CurrentActor",
    "CurrentService",
    "GatewayDep",
    "HubStateDep",
    "OptionalActor",
    "RegistryDep",
    "RowId",
    "SessionDep",
    "is_chat_app",
    "service_actor",
    "service_of",
    "user_actor",
]

# A row's id or version number in a path: what the database can hold (a signed 64-bit
# integer), so a larger one is a clear 422 rather than an overflow in the database driver.
RowId = Annotated[int, Path(ge=-(2**63), le=2**63 - 1)]

# The chat app (and only it) calls on behalf of the person signed in to it.
ACTING_FOR_HEADER = "x-switchboard-user"


async def get_hub_state(request: Request) -> HubState:
    hub_state: HubState = request.app.state.hub
    return hub_state


# Dependencies are async where they do no blocking work: FastAPI runs plain functions in its
# thread pool, which costs the gateway's hot path a thread hop per request.
HubStateDep = Annotated[HubState, Depends(get_hub_state)]


def get_session(hub_state: HubStateDep) -> Iterator[Session]:
    with Session(hub_state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def get_gateway(hub_state: HubStateDep) -> Gateway:
    return hub_state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def get_current_service(request: Request, hub_state: HubStateDep) -> ServiceIdentity:
    return await service_of(request, hub_state)


async def service_of(request: Request, hub_state: HubState) -> ServiceIdentity:
    """The service whose bearer token the request carries; 401 when there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError(
            "Missing service token. Send 'Authorization: Bearer <token>'; an admin creates one "
            "with 'switchboard service create NAME --team TEAM'.",
            code="missing_token",
        )
    token = token.strip()
    hit, identity = hub_state.tokens.cached(token)
    if not hit:
        identity = await anyio.to_thread.run_sync(hub_state.tokens.lookup, token)
    if identity is None:
        raise UnauthenticatedError(
            "Invalid service token: it is unknown or its service is disabled.",
            code="invalid_token",
        )
    return identity


CurrentService = Annotated[ServiceIdentity, Depends(get_current_service)]


def is_chat_app(service: ServiceIdentity) -> bool:
    """Whether this is the chat app's service (its token is `app_service_token`): the one
    caller trusted to act for a person and to speak for the agent runtime in its process."""
    return service.name == APP_SERVICE_NAME


async def get_admin_service(service: CurrentService) -> ServiceIdentity:
    if not service.is_admin:
        raise PermissionDeniedError(
            f"Service {service.name!r} is not an admin; this needs an admin token "
            "('switchboard service create NAME --team TEAM --admin')."
        )
    return service


AdminService = Annotated[ServiceIdentity, Depends(get_admin_service)]


async def get_registry(hub_state: HubStateDep) -> McpRegistry:
    return hub_state.registry


RegistryDep = Annotated[McpRegistry, Depends(get_registry)]


async def get_optional_actor(request: Request, hub_state: HubStateDep) -> Actor | None:
    """A service (bearer token) or a person (the hub's session cookie), or nobody."""
    if request.headers.get("authorization"):
        service = await get_current_service(request, hub_state)
        acting_for = request.headers.get(ACTING_FOR_HEADER)
        if acting_for and is_chat_app(service):
            person = await _user_actor(
                hub_state, lambda s: get_user(session=s, username=acting_for)
            )
            if person is None:
                raise UnauthenticatedError(f"No user named {acting_for!r}.", code="unknown_user")
            return person
        return service_actor(service)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await _user_actor(hub_state, lambda s: user_for_web_session(session=s, token=token))


def user_actor(user: User) -> Actor:
    return Actor(
        kind="user",
        id=user.key,
        name=user.username,
        team=user.team,
        role=Role(user.role),
        teams=frozenset(user.teams or [user.team]),
    )


def service_actor(service: ServiceIdentity) -> Actor:
    """A service token acts as a builder of its team, or as an admin (`--admin`)."""
    role = Role.admin if service.is_admin else Role.builder
    return Actor(
        kind="service",
        id=str(service.id),
        name=service.name,
        team=service.team,
        role=role,
        teams=frozenset(),
    )


async def _user_actor(hub_state: HubState, find: Callable[[Session], User | None]) -> Actor | None:
    def lookup() -> Actor | None:
        with Session(hub_state.engine) as session:
            user = find(session)
            if user is None:
                return None
            return user_actor(user)

    return await anyio.to_thread.run_sync(lookup)


OptionalActor = Annotated[Actor | None, Depends(get_optional_actor)]


async def get_actor(actor: OptionalActor) -> Actor:
    if actor is None:
        raise UnauthenticatedError(
            "Sign in at /login, or send a service token as 'Authorization: Bearer <token>'.",
            code="not_signed_in",
        )
    return actor


CurrentActor = Annotated[Actor, Depends(get_actor)]


async def get_builder(actor: CurrentActor) -> Actor:
    actor.require(Permission.build)
    return actor


async def get_admin(actor: CurrentActor) -> Actor:
    actor.require(Permission.administer)
    return actor


# A person or service whose role allows building (agents, MCP servers), or administering.
BuilderActor = Annotated[Actor, Depends(get_builder)]
AdminActor = Annotated[Actor, Depends(get_admin)]


async def get_chat_app(request: Request, hub_state: HubStateDep) -> ServiceIdentity:
    """The chat app's service, by the token itself (with X-Switchboard-User it acts for a
    person, but the token is still the chat app's). Signed out: 401; anyone else: 403."""
    if request.headers.get("authorization"):
        service = await service_of(request, hub_state)
        if is_chat_app(service):
            return service
        caller = f"the service {service.name!r}"
    else:
        caller = repr((await get_actor(await get_optional_actor(request, hub_state))).name)
    raise PermissionDeniedError(
        f"Only the chat app's service may call {request.method} {request.url.path}; "
        f"{caller} may not."
    )


# Routes for the chat app alone: people's sign-ins, the traces of the agent runtime in it.
ChatApp = Annotated[ServiceIdentity, Depends(get_chat_app)]
