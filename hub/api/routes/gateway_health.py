"""The gateway's deployments and their circuit breakers, for admins."""

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from redis.exceptions import RedisError

from hub.api.deps import CurrentActor, GatewayDep
from hub.gateway.errors import GatewayError
from hub.gateway.proxy import Gateway

__all__ = ["DeploymentHealth", "deployment_health", "router"]

router = APIRouter(prefix="/api/gateway", tags=["gateway"])


class DeploymentHealth(BaseModel):
    model: str
    deployment: str
    provider: str
    region: str
    state: Literal["closed", "open", "half_open"]
    recent_failures: int
    # Seconds until the breaker lets a probe through (when open).
    retry_in_s: float


async def deployment_health(gateway: Gateway) -> list[DeploymentHealth]:
    try:
        health = await gateway.health()
    except RedisError as error:
        raise GatewayError(
            503, f"The breakers' state is kept in Redis, which cannot be reached now: {error}"
        ) from error
    return [
        DeploymentHealth(
            model=entry.name,
            deployment=deployment.name,
            provider=deployment.provider,
            region=deployment.region,
            state=state.state,
            recent_failures=state.recent_failures,
            retry_in_s=round(state.retry_in_s, 3),
        )
        for entry, deployment, state in health
    ]


@router.get("/breakers", response_model=list[DeploymentHealth])
async def list_breakers(actor: CurrentActor, gateway: GatewayDep) -> list[DeploymentHealth]:
    """Each deployment's circuit breaker: closed, open (skipped) or half-open (probing)."""
    if not actor.is_admin:
        raise GatewayError(
            403, "Only admins see the gateway's circuit breakers.", code="admin_required"
        )
    return await deployment_health(gateway)
