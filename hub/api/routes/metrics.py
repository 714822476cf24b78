"""The hub's Prometheus metrics (hub/core/metrics.py), for the platform's scraper."""

import logging
from typing import Annotated

from fastapi import APIRouter, Header
from redis.exceptions import RedisError
from starlette.responses import Response

from hub.api.deps import HubStateDep
from hub.core.errors import UnauthenticatedError
from hub.core.metrics import METRICS_CONTENT_TYPE, BreakerFigure, LiveFigures, metrics_token_refusal
from hub.state import HubState

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["metrics"])


async def _live_figures(hub_state: HubState) -> LiveFigures:
    try:
        breakers: list[BreakerFigure] | None = [
            BreakerFigure(
                model=entry.name,
                region=deployment.region,
                deployment=deployment.name,
                state=state.state,
                recent_failures=state.recent_failures,
            )
            for entry, deployment, state in await hub_state.gateway.health()
        ]
    except RedisError as error:
        logger.warning("the metrics leave out the circuit breakers: Redis failed: %s", error)
        breakers = None
    return LiveFigures(
        breakers=breakers,
        writers=[hub_state.recorder.figures(), hub_state.registry.calls.figures()],
        mcp_servers=await hub_state.registry.health_counts(),
    )


@router.get("/metrics", response_class=Response)
async def metrics(
    hub_state: HubStateDep, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """This hub process's metrics in Prometheus' text format. Open unless
    SWITCHBOARD_METRICS_TOKEN is set; then only with `Authorization: Bearer <token>`."""
    if reason := metrics_token_refusal(authorization, hub_state.settings.metrics_token):
        raise UnauthenticatedError(reason, code="metrics_token_required")
    body = hub_state.metrics.exposition(await _live_figures(hub_state))
    return Response(body, media_type=METRICS_CONTENT_TYPE)
