"""The chat's Prometheus metrics at `GET /metrics`: chat turns by kind (a chat with a model, or
an agent) and how they ended, and how long they took. The hub counts the model and tool calls
behind them (hub/core/metrics.py). Open unless SWITCHBOARD_METRICS_TOKEN is set, as the hub's.
"""

from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, HTTPException
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector
from starlette.responses import Response

from hub.core.metrics import METRICS_CONTENT_TYPE, metrics_token_refusal

__all__ = ["ChatMetrics", "add_metrics_route"]

# Seconds: a turn with tool calls and a warehouse query can take minutes.
_TURN_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640)


class ChatMetrics:
    def __init__(self) -> None:
        self._registry = CollectorRegistry()
        self._turns = Counter(
            "switchboard_chat_turns",
            "Chat turns, by kind (model or agent) and how they ended (ok, error, cancelled...).",
            ["kind", "status"],
            registry=self._registry,
        )
        self._duration = Histogram(
            "switchboard_chat_turn_duration_seconds",
            "Time from a person's message to the end of the reply.",
            ["kind"],
            buckets=_TURN_BUCKETS,
            registry=self._registry,
        )
        ProcessCollector(registry=self._registry)

    def turn(self, kind: str, status: str, seconds: float) -> None:
        self._turns.labels(kind, status).inc()
        self._duration.labels(kind).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self._registry)


def add_metrics_route(app: FastAPI, metrics: ChatMetrics, token: str) -> None:
    """Serve `metrics` at /metrics; the route goes first, ahead of Chainlit's page."""
    router = APIRouter()

    @router.get("/metrics")
    async def read_metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        if reason := metrics_token_refusal(authorization, token):
            raise HTTPException(401, reason, headers={"www-authenticate": "Bearer"})
        return Response(metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    app.include_router(router)
    added = app.router.routes.pop()
    app.router.routes.insert(0, added)
