"""The hub's app factory: `uvicorn --factory hub.main:create_app`."""

import gc
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from agents.tracing.sender import BATCH_PATH as TRACE_BATCH_PATH
from hub.api.errors import declare_error_body, refusal_response
from hub.api.main import api_router
from hub.api.routes.mcp_servers import TOOL_CALL_PATH, call_tool
from hub.api.routes.shares import SHARE_BODY_LIMIT
from hub.api.routes.shares import router as shares_router
from hub.api.uploads import UPLOAD_LIMIT, UPLOAD_PATHS
from hub.body_limits import BodyLimit, BodyLimits
from hub.core.config import (
    APP_SERVICE_NAME,
    EVALUATION_SERVICE_NAME,
    PLAYGROUND_SERVICE_NAME,
    Settings,
    get_settings,
)
from hub.core.crypto import SecretBox, load_or_create_key
from hub.core.db import get_engine, migrate
from hub.core.errors import Refusal
from hub.core.leader import LeaderLock
from hub.core.logs import configure_logging
from hub.core.metrics import HubMetrics
from hub.core.origin_check import origin_refusal
from hub.evaluation.live_scorer import LiveScorer
from hub.evaluation.runner import EvalRunner
from hub.gateway.errors import GatewayError, openai_error_response
from hub.gateway.experiment_calls import ExperimentResolver, ShadowCalls
from hub.gateway.model_catalog import load_model_catalog
from hub.gateway.prompt_calls import PromptResolver
from hub.gateway.routes import (
    CHAT_COMPLETIONS_PATH,
    PROMPT_COMPLETIONS_PATH,
    chat_completions,
    prompt_completions,
)
from hub.gateway.shared import build_gateway
from hub.hot_routes import HotRoutes
from hub.identity.attempts import SignInAttempts
from hub.identity.oidc import OidcClient
from hub.mcp.netguard import NetworkPolicy
from hub.mcp.registry import McpRegistry
from hub.observed_requests import observe_request
from hub.services import audit
from hub.services.service_accounts import TokenResolver, ensure_service
from hub.services.usage import UsageRecorder
from hub.state import HubState
from hub.trace_sweeper import TraceSweeper
from hub.web import (
    agent_pages,
    audit_pages,
    eval_gate_pages,
    eval_judge_pages,
    eval_run_pages,
    eval_set_pages,
    experiment_pages,
    feedback_pages,
    gateway_pages,
    live_judge_pages,
    pages,
    prompt_pages,
    session_pages,
    share_pages,
    sign_in,
    trace_pages,
)

__all__ = ["HOT_ROUTES", "create_app"]

logger = logging.getLogger(__name__)

# Every model call (a prompt's too) and every tool call: answered ahead of the middleware
# stack, so they are not in `app.routes`.
HOT_ROUTES = (
    Route(CHAT_COMPLETIONS_PATH, chat_completions, methods=["POST"]),
    Route(PROMPT_COMPLETIONS_PATH, prompt_completions, methods=["POST"]),
    Route(TOOL_CALL_PATH, call_tool, methods=["POST"]),
)


def _is_gateway_path(request: Request) -> bool:
    return request.url.path.startswith("/v1/")


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if _is_gateway_path(request):
        return exc.response()
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
    if _is_gateway_path(request):
        return openai_error_response(422, f"Invalid request: {problems}")
    return JSONResponse({"detail": f"Invalid request: {problems}"}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _is_gateway_path(request):
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"No such endpoint: {request.method} {request.url.path}."
        return openai_error_response(exc.status_code, message, headers=exc.headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _body_limits(app: ASGIApp, settings: Settings) -> BodyLimits:
    model_call = BodyLimit(
        settings.model_call_body_max_bytes,
        "a model call",
        "Send fewer or smaller images, or link them by URL.",
    )
    # A batch's steps carry model calls' messages.
    traces = BodyLimit(settings.model_call_body_max_bytes, "a batch of traces")
    return BodyLimits(
        app,
        default=BodyLimit(settings.request_body_max_bytes, "a request"),
        routes={
            CHAT_COMPLETIONS_PATH: model_call,
            PROMPT_COMPLETIONS_PATH: model_call,
            TRACE_BATCH_PATH: traces,
            shares_router.prefix: SHARE_BODY_LIMIT,
            **dict.fromkeys(UPLOAD_PATHS, UPLOAD_LIMIT),
        },
    )


def _registry(settings: Settings, engine: Engine, box: SecretBox) -> McpRegistry:
    return McpRegistry(
        engine=engine,
        box=box,
        policy=NetworkPolicy.from_strings(settings.allowed_mcp_networks),
        connect_timeout_s=settings.mcp_connect_timeout_s,
        discovery_timeout_s=settings.mcp_discovery_timeout_s,
        call_timeout_s=settings.mcp_call_timeout_s,
        check_interval_s=settings.mcp_check_interval_s,
        check_now_interval_s=settings.mcp_check_now_interval_s,
        flush_interval_s=settings.usage_flush_interval_s,
        max_pending_calls=settings.usage_max_pending,
        leader=LeaderLock(settings.sqlalchemy_url, work="the scheduled MCP health checks"),
    )


def _oidc_client(settings: Settings) -> OidcClient | None:
    if not settings.oidc_enabled:
        return None
    return OidcClient(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        scopes=settings.oidc_scopes,
        redirect_uri=f"{settings.hub_public_url}/auth/oidc/callback",
        leeway_s=settings.oidc_leeway_s,
    )


def _internal_service(session: Session, name: str) -> int:
    """The id of a service the hub calls the gateway as itself, with a token nobody holds."""
    service = ensure_service(
        session=session, name=name, team="platform", token=secrets.token_urlsafe(32)
    )
    assert service.id is not None
    return service.id


def _freeze_startup_objects() -> None:
    """Move what start-up created (modules, the app, caches: ~190,000 objects) out of the
    garbage collector's sight. A full collection walks every tracked object and took ~100 ms
    here, stalling every request in flight; these objects live as long as the process anyway."""
    gc.collect()
    gc.freeze()


class _HubApp(FastAPI):
    """The hub's FastAPI app, with the model-call and tool-call routes answered ahead of its
    middleware stack (hub/hot_routes.py); they stay out of the OpenAPI docs (the README
    documents them). Every HTTP request is observed (its request id and metrics:
    hub/observed_requests.py), has its body's size limited (hub/body_limits.py) and passes the
    cross-site check (hub/core/origin_check.py) first; the others carry the caller's address
    to the audit log (hub/services/audit.py)."""

    # Origins besides the request's own that the hub's pages are served from (create_app).
    trusted_origins: tuple[str, ...] = ()

    def __init__(self, metrics: HubMetrics, settings: Settings, **options: Any) -> None:
        super().__init__(**options)
        self._hot_routes = HotRoutes(self, HOT_ROUTES)
        self._metrics = metrics
        self._limited = _body_limits(self._answer, settings)

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = declare_error_body(super().openapi())
        return self.openapi_schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await observe_request(scope, receive, send, self._limited, self._metrics.http)
        else:
            await self._answer(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (refusal := origin_refusal(scope, self.trusted_origins)):
            await refusal(scope, receive, send)
        elif not await self._hot_routes.answered(scope, receive, send):
            client = scope.get("client")
            with audit.caller_address(client[0] if client else None):
                await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_format, settings.log_level)
    metrics = HubMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.sqlalchemy_url
        migrate(url)
        engine = get_engine(url)
        with Session(engine) as session:
            ensure_service(
                session=session,
                name=APP_SERVICE_NAME,
                team="platform",
                token=settings.app_service_token,
            )
            # Their tokens are never handed out: the hub counts playground runs and
            # evaluation runs under them itself.
            playground_service_id, evaluation_service_id = (
                _internal_service(session, name)
                for name in (PLAYGROUND_SERVICE_NAME, EVALUATION_SERVICE_NAME)
            )
        recorder = UsageRecorder(
            engine, settings.usage_flush_interval_s, settings.usage_max_pending
        )
        gateway, redis = build_gateway(
            settings, load_model_catalog(settings.catalog_path), recorder, engine, metrics.gateway
        )
        box = SecretBox(settings.secret_key or load_or_create_key(settings.data_dir))
        registry = _registry(settings, engine, box)
        await recorder.start()
        await gateway.start()
        await registry.start()
        resolver = PromptResolver(engine)
        # Evaluation runs: their cases are answered through the gateway in this process.
        runner = EvalRunner(
            engine=engine,
            gateway=gateway,
            registry=registry,
            resolver=resolver,
            service_id=evaluation_service_id,
            poll_interval_s=settings.eval_poll_interval_s,
            abandon_after_s=2 * settings.request_deadline_s,
            query_approval_bytes=settings.query_approval_bytes,
        )
        await runner.start()
        live_scorer = LiveScorer(
            engine=engine,
            gateway=gateway,
            service_id=evaluation_service_id,
            refresh_s=settings.live_judge_refresh_s,
            queue_size=settings.live_judge_queue_size,
        )
        await live_scorer.start()
        sweeper = TraceSweeper(
            engine=engine,
            keep_days=settings.deleted_conversation_trace_days,
            interval_s=settings.trace_sweep_interval_s,
        )
        await sweeper.start()
        app.state.hub = HubState(
            settings=settings,
            engine=engine,
            tokens=TokenResolver(engine, settings.token_cache_ttl_s),
            recorder=recorder,
            gateway=gateway,
            prompts=resolver,
            registry=registry,
            box=box,
            oidc=_oidc_client(settings),
            sign_in_attempts=SignInAttempts(),
            playground_service_id=playground_service_id,
            evaluation_service_id=evaluation_service_id,
            experiments=ExperimentResolver(engine),
            shadow_calls=ShadowCalls(engine, gateway),
            metrics=metrics,
            live_scorer=live_scorer,
        )
        _freeze_startup_objects()
        try:
            yield
        finally:
            await sweeper.close()
            await runner.close()
            await live_scorer.close()
            await app.state.hub.shadow_calls.close()
            await registry.close()
            await gateway.close()
            await recorder.close()
            if redis is not None:
                await redis.aclose()
            engine.dispose()

    app = _HubApp(metrics, settings, title="Switchboard hub", version="0.1.0", lifespan=lifespan)
    app.trusted_origins = (settings.hub_public_url,)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Refusal, refusal_response)
    app.include_router(api_router)
    app.include_router(sign_in.router)
    app.include_router(pages.router)
    # Before the agent pages, whose `/agents/{slug}/{action}` would take the gate's forms.
    app.include_router(eval_gate_pages.router)
    app.include_router(agent_pages.router)
    app.include_router(prompt_pages.router)
    app.include_router(eval_set_pages.router)
    app.include_router(trace_pages.router)
    app.include_router(gateway_pages.router)
    app.include_router(session_pages.router)
    app.include_router(audit_pages.router)
    app.include_router(share_pages.router)
    app.include_router(feedback_pages.router)
    app.include_router(eval_run_pages.router)
    app.include_router(eval_judge_pages.router)
    app.include_router(experiment_pages.router)
    app.include_router(live_judge_pages.router)
    return app
