"""All of the hub's routers, gathered in one place."""

from fastapi import APIRouter

from hub.api.routes import (
    agents,
    audit,
    auth,
    eval_gates,
    eval_judges,
    eval_runs,
    eval_sets,
    experiments,
    feedback,
    gateway_health,
    health,
    live_judges,
    mcp_servers,
    metrics,
    model_chat,
    prompts,
    shares,
    traces,
    usage,
)
from hub.gateway import routes as gateway

__all__ = ["api_router"]

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(metrics.router)
api_router.include_router(gateway.router)
api_router.include_router(usage.router)
api_router.include_router(gateway_health.router)
api_router.include_router(auth.router)
api_router.include_router(mcp_servers.router)
api_router.include_router(agents.router)
api_router.include_router(model_chat.router)
api_router.include_router(prompts.router)
api_router.include_router(prompts.playground_router)
api_router.include_router(eval_sets.router)
api_router.include_router(traces.router)
api_router.include_router(audit.router)
api_router.include_router(shares.router)
api_router.include_router(feedback.router)
api_router.include_router(eval_runs.router)
api_router.include_router(eval_judges.router)
api_router.include_router(eval_gates.prompt_router)
api_router.include_router(eval_gates.agent_router)
api_router.include_router(experiments.router)
api_router.include_router(live_judges.router)
