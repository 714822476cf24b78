"""Injected types for routes, declared once."""

from collections.abc import Iterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlmodel import Session

from hub.gateway.errors import GatewayError
from hub.gateway.proxy import Gateway
from hub.runtime import HubRuntime
from hub.services.services import ServiceIdentity

__all__ = ["AdminService", "CurrentService", "GatewayDep", "RuntimeDep", "SessionDep"]


def get_runtime(request: Request) -> HubRuntime:
    runtime: HubRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[HubRuntime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with Session(runtime.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_gateway(runtime: RuntimeDep) -> Gateway:
    return runtime.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def get_current_service(request: Request, runtime: RuntimeDep) -> ServiceIdentity:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise GatewayError(
            401,
            "Missing service token. Send 'Authorization: Bearer <token>'; an admin creates one "
            "with 'switchboard service create NAME --team TEAM'.",
            type="authentication_error",
            code="missing_token",
        )
    token = token.strip()
    hit, identity = runtime.tokens.cached(token)
    if not hit:
        identity = await anyio.to_thread.run_sync(runtime.tokens.lookup, token)
    if identity is None:
        raise GatewayError(
            401,
            "Invalid service token: it is unknown or its service is disabled.",
            type="authentication_error",
            code="invalid_token",
        )
    return identity


CurrentService = Annotated[ServiceIdentity, Depends(get_current_service)]


async def get_admin_service(service: CurrentService) -> ServiceIdentity:
    if not service.is_admin:
        raise GatewayError(
            403,
            f"Service {service.name!r} is not an admin; this needs an admin token "
            "('switchboard service create NAME --team TEAM --admin').",
            type="permission_error",
            code="admin_required",
        )
    return service


AdminService = Annotated[ServiceIdentity, Depends(get_admin_service)]
